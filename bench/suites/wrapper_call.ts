/**
 * What a wrapper pays to forward a fetch handler's arguments
 * (bench/wrapper_call.ts), each form in a process of its own, on the server
 * CPU, in interleaved rounds.
 */
import { output } from "../../scripts/_process.ts";
import { pinned, programCommand } from "../_command.ts";
import { type Runtime, RUNTIMES, type Setup } from "../_ensure.ts";
import {
  formatSpread,
  interleave,
  type Spread,
  spread,
  values,
} from "../_rounds.ts";
import { type Section, table } from "../_section.ts";

const FORMS: Record<string, string> = {
  direct: "the handler itself (no wrapper)",
  rest: "`(request, ...rest)` then `handler(request, ...rest)`",
  "rest-on": "the same, the rest array handed to an inner function first",
  fixed: "`(request, a, b)` then `handler(request, a, b)`",
  counted: "`(request, a, b)`, passing on as many arguments as it got",
  "counted-2": "`(request, a)`, passing on as many arguments as it got",
  apply: "`handler.apply(this, arguments)`",
};

interface Call {
  inlined: number;
  server: number;
}

export async function wrapperCall(setup: Setup): Promise<Section> {
  const rounds = setup.full ? 9 : 5;
  const result = {} as Record<
    Runtime,
    Record<string, { server: Spread; inlined: Spread }>
  >;
  for (const runtime of RUNTIMES) {
    const { samples } = await interleave<Call>({
      modes: () => Object.keys(FORMS),
      measure: async (form) =>
        JSON.parse(
          await output(
            ...pinned(
              setup,
              "server",
              programCommand(setup, runtime, "wrapper_call"),
            ),
            { env: { FORM: form } },
          ),
        ),
      enough: (_, done) => done >= rounds,
      maxRounds: rounds,
    });
    result[runtime] = Object.fromEntries(
      Object.keys(FORMS).map((form) => [form, {
        server: spread(values(samples, form, (s) => s.server)),
        inlined: spread(values(samples, form, (s) => s.inlined)),
      }]),
    );
  }
  const cell = (runtime: Runtime, form: string) => {
    const { server } = result[runtime][form];
    const added = server.median - result[runtime].direct.server.median;
    return form === "direct"
      ? formatSpread(server)
      : `${formatSpread(server)} (${added >= 0 ? "+" : ""}${added.toFixed(1)})`;
  };
  return {
    key: "wrapperCall",
    json: result,
    markdown: [
      "## Forwarding a fetch handler's arguments (ns per call)",
      "",
      `A wrapper called with two arguments (the request and the server's \`info\`, \`server\` or bindings), from a call site that has seen many callees, as a server calls its handler from native code; in brackets, the 95% confidence interval of the median of ${rounds} rounds, each form in a process of its own; in parentheses, what the wrapper adds to calling the handler directly. Where the caller's loop may inline the wrapper, every form costs under a few ns (bench.json, \`inlined\`).`,
      "",
      ...table(
        ["wrapper", ...RUNTIMES],
        Object.entries(FORMS).map(([form, label]) => [
          label,
          ...RUNTIMES.map((r) => cell(r, form)),
        ]),
      ),
    ],
  };
}
