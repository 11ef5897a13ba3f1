/**
 * Type-checks every TypeScript code block of README.md and docs/*.md, so that
 * no example in the documentation drifts from the API, and checks that every
 * relative link there points to a file that exists (and, into Markdown, to a
 * heading that exists).
 *
 * A block is checked when its info string starts with `ts`, `tsx` or
 * `typescript`; `ts ignore` (the word `ignore` anywhere after the language)
 * leaves a block out. Each block becomes a module of its own under
 * `.doc-check/` inside the repository, so that the import map of deno.json
 * resolves `@floodgate/floodgate`, `floodgate`, `hono` and the rest, and all
 * of them are checked by one `deno check`. Errors name the Markdown file and
 * line.
 *
 * Usage: deno run --allow-read --allow-write --allow-run scripts/check_docs.ts
 */
import { join, resolve } from "node:path";

/** One code block taken from a Markdown file. */
interface CodeBlock {
  /** The Markdown file, relative to the repository root. */
  file: string;
  /** The 1-based line of the block's opening fence. */
  line: number;
  /** The language of the info string: `ts`, `tsx` or `typescript`. */
  lang: string;
  /** The block's text, its fence's indentation removed. */
  code: string;
  /** How many spaces of indentation were removed from each line. */
  indent: number;
}

const CHECKED = new Set(["ts", "tsx", "typescript"]);
// Any indentation: a fence inside a (nested) list item is indented too.
const FENCE = /^( *)(`{3,}|~{3,})\s*([^`]*)$/;

/**
 * The TypeScript blocks of one Markdown text that are to be checked.
 *
 * @param file The file's name, reported with each block.
 * @param text The Markdown text.
 * @returns The blocks, in order.
 * @throws {Error} If a fence is never closed.
 */
function extractBlocks(file: string, text: string): CodeBlock[] {
  const lines = text.split("\n");
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(FENCE);
    if (open === null) continue;
    const [, indent, fence, info] = open;
    const words = info.trim().split(/\s+/);
    const body: string[] = [];
    let closed = false;
    const start = i;
    for (i++; i < lines.length; i++) {
      const close = lines[i].match(/^ *(`{3,}|~{3,})\s*$/);
      if (
        close !== null && close[1][0] === fence[0] &&
        close[1].length >= fence.length
      ) {
        closed = true;
        break;
      }
      // Content lines lose up to the opening fence's indentation.
      let cut = 0;
      while (cut < indent.length && lines[i][cut] === " ") cut++;
      body.push(lines[i].slice(cut));
    }
    if (!closed) {
      throw new Error(`${file}:${start + 1}: code block is never closed`);
    }
    const lang = words[0].toLowerCase();
    if (!CHECKED.has(lang) || words.includes("ignore")) continue;
    blocks.push({
      file,
      line: start + 1,
      lang,
      code: body.join("\n"),
      indent: indent.length,
    });
  }
  return blocks;
}

const root = resolve(import.meta.dirname!, "..");

async function markdownFiles(): Promise<string[]> {
  const files = ["README.md"];
  const docs = join(root, "docs");
  try {
    for await (const entry of Deno.readDir(docs)) {
      if (entry.isFile && entry.name.endsWith(".md")) {
        files.push(join("docs", entry.name));
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return files.sort();
}

/** The anchor a Markdown heading gets: lower case, punctuation dropped. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

/** The relative links of `file` that lead nowhere, as messages. */
async function brokenLinks(file: string, text: string): Promise<string[]> {
  const broken: string[] = [];
  const prose = text.replace(/^( *)(`{3,})[^]*?^\1\2\s*$/gm, "");
  for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/i.test(target)) continue;
    const [path, anchor] = target.split("#");
    const resolved = path === ""
      ? join(root, file)
      : resolve(join(root, file, ".."), path);
    let linked: string;
    try {
      linked = (await Deno.stat(resolved)).isFile
        ? await Deno.readTextFile(resolved)
        : "";
    } catch {
      broken.push(`${file}: ${target} (no such file)`);
      continue;
    }
    if (anchor === undefined || !resolved.endsWith(".md")) continue;
    const headings = [...linked.matchAll(/^#+ (.*)$/gm)].map(([, h]) =>
      slug(h)
    );
    if (!headings.includes(anchor)) {
      broken.push(`${file}: ${target} (no such heading)`);
    }
  }
  return broken;
}

async function main(): Promise<number> {
  const blocks: CodeBlock[] = [];
  const broken: string[] = [];
  for (const file of await markdownFiles()) {
    const text = await Deno.readTextFile(join(root, file));
    blocks.push(...extractBlocks(file, text));
    broken.push(...await brokenLinks(file, text));
  }
  if (broken.length !== 0) {
    console.error(`check_docs: broken links:\n  ${broken.join("\n  ")}`);
    return 1;
  }
  if (blocks.length === 0) {
    console.log("check_docs: no TypeScript blocks found");
    return 0;
  }

  // A directory per run, so that two runs at once do not collide.
  const base = join(root, ".doc-check");
  await Deno.mkdir(base, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: base, prefix: "run_" });
  try {
    /** Where each generated file's block starts in its Markdown file. */
    const origins = new Map<string, CodeBlock>();
    const paths: string[] = [];
    for (const block of blocks) {
      const name = `${
        block.file.replace(/[^A-Za-z0-9]+/g, "_")
      }_L${block.line}.${block.lang === "tsx" ? "tsx" : "ts"}`;
      const path = join(dir, name);
      // `export {}` makes every block a module of its own: no block sees
      // another's top-level names, and top-level await is allowed.
      await Deno.writeTextFile(path, `${block.code}\nexport {};\n`);
      origins.set(name, block);
      paths.push(path);
    }
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", ...paths],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (output.success) {
      console.log(
        `check_docs: ${blocks.length} TypeScript blocks in ${
          new Set(blocks.map((b) => b.file)).size
        } files type-check`,
      );
      return 0;
    }
    const decoder = new TextDecoder();
    const failing = new Set<CodeBlock>();
    // Point every location at the Markdown file: the block's text starts on
    // the line after its fence.
    const report = (decoder.decode(output.stdout) +
      decoder.decode(output.stderr)).replace(
        /(?:file:\/\/)?[^\s'"()]*\.doc-check\/run_[^/\s]+\/([^:\s'"()]+):(\d+)(?::(\d+))?/g,
        (match, name: string, line: string, column?: string) => {
          const block = origins.get(name);
          if (block === undefined) return match;
          failing.add(block);
          const at = `${block.file}:${block.line + Number(line)}`;
          return column === undefined
            ? at
            : `${at}:${block.indent + Number(column)}`;
        },
      );
    console.error(report.trimEnd());
    if (failing.size === 0) {
      console.error(
        "\ncheck_docs: deno check failed in modules the code blocks import",
      );
      return 1;
    }
    console.error(`\ncheck_docs: ${failing.size} code block(s) fail:`);
    for (const block of failing) {
      console.error(`  ${block.file}:${block.line}`);
    }
    return 1;
  } finally {
    await Deno.remove(dir, { recursive: true });
    // Leave no empty folder behind; another run may still be using it.
    await Deno.remove(base).catch(() => {});
  }
}

if (import.meta.main) {
  const code = await main();
  if (code !== 0) Deno.exit(code);
}
