import ts from "typescript";
import { dirname, join } from "node:path";

/**
 * Writes `root/<file>.ts` as `root/npm/<file>.js`, types stripped and
 * relative `.ts` imports turned into `.js`, so that Node runs it beside the
 * npm build. Only transpiled: `deno check` has checked the types.
 */
export async function transpileBesideBuild(
  root: string,
  file: string,
): Promise<string> {
  const source = await Deno.readTextFile(join(root, file));
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      rewriteRelativeImportExtensions: true,
    },
    fileName: file,
  });
  const target = join(root, "npm", file.replace(/\.ts$/, ".js"));
  await Deno.mkdir(dirname(target), { recursive: true });
  await Deno.writeTextFile(target, outputText);
  return target;
}
