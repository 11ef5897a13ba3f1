/** Options for {@linkcode run}. */
export interface RunOptions {
  cwd?: string;
  /** Return stdout instead of passing it through. */
  capture?: boolean;
  env?: Record<string, string>;
}

/**
 * Runs a command and fails the script when it fails; the command line is
 * printed first so that a log shows what ran.
 */
export async function run(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<string> {
  console.log(`$ ${command} ${args.join(" ")}`);
  const output = await new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdout: options.capture ? "piped" : "inherit",
    stderr: "inherit",
  }).output();
  if (!output.success) {
    console.error(`failed (exit ${output.code}): ${command} ${args.join(" ")}`);
    Deno.exit(output.code || 1);
  }
  return options.capture ? new TextDecoder().decode(output.stdout) : "";
}
