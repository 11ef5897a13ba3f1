/**
 * Runs `deno doc --lint` on every entry point. The Hono entry point's types
 * name Hono's own (`Context`, `Env`, `MiddlewareHandler`) and the
 * OpenTelemetry one names the API's `Meter`, which the linter reports as
 * private references since they are documented by their projects, not here:
 * those reports, and only those, are let through.
 *
 * Usage: deno run --allow-run --allow-read scripts/doc_lint.ts
 */
const PEER_TYPES = new Set(["Context", "Env", "MiddlewareHandler", "Meter"]);
const config = JSON.parse(await Deno.readTextFile("deno.json"));
const entries = Object.values(config.exports) as string[];
const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
  args: ["doc", "--lint", ...entries],
}).output();
// Without colour codes, whatever the environment asks for.
const output = (new TextDecoder().decode(stdout) +
  new TextDecoder().decode(stderr))
  // deno-lint-ignore no-control-regex
  .replace(/\x1b\[[0-9;]*m/g, "");
const errors = [...output.matchAll(/^error\[([\w-]+)\]: (.*)$/gm)];
const real = errors.filter(([, rule, message]) => {
  const type = message.match(/references private type '(\w+)'/)?.[1];
  return !(rule === "private-type-ref" && PEER_TYPES.has(type ?? ""));
});
if (real.length > 0 || (!success && errors.length === 0)) {
  console.error(output);
  console.error(`doc lint: ${real.length} errors in ${entries.join(", ")}`);
  Deno.exit(1);
}
console.log(
  `doc lint: ${entries.join(", ")} clean (${
    errors.length - real.length
  } references to Hono's and OpenTelemetry's own types)`,
);
