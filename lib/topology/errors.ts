import { readFileSync } from "node:fs";
import { type Document, isNode, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";

export type DocPath = readonly (string | number)[];

export interface ConfigIssue {
  /** Dotted path in the document, e.g. hosts.r1.interfaces.eth0.addresses[0] */
  path: string;
  line: number | undefined;
  column: number | undefined;
  message: string;
  value: unknown;
}

/** A bad configuration file: names the file, the path in the document, the line and the value. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(
      issues
        .map((i) => {
          const where = i.line !== undefined ? `${file}:${i.line}:${i.column}` : file;
          const value = i.value === undefined ? "" : ` (value: ${JSON.stringify(i.value)})`;
          return `${where}: ${i.path || "<root>"}: ${i.message}${value}`;
        })
        .join("\n"),
    );
    this.name = "ConfigError";
  }
}

export function formatPath(path: DocPath): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${part}` : part;
  }
  return out;
}

/** A parsed YAML document that can answer "which line is this path on". */
export class SourceDocument {
  private readonly lineCounter = new LineCounter();
  readonly doc: Document;

  constructor(
    readonly file: string,
    readonly text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lineCounter, prettyErrors: false });
  }

  static read(file: string): SourceDocument {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new ConfigError(file, [
        {
          path: "",
          line: undefined,
          column: undefined,
          message: `cannot read file: ${(e as Error).message}`,
          value: undefined,
        },
      ]);
    }
    return new SourceDocument(file, text);
  }

  /** Throws a ConfigError for YAML syntax errors. */
  toJS(): unknown {
    if (this.doc.errors.length > 0) {
      throw new ConfigError(
        this.file,
        this.doc.errors.map((e) => {
          const pos = this.lineCounter.linePos(e.pos[0]);
          return {
            path: "",
            line: pos.line,
            column: pos.col,
            message: `YAML syntax: ${e.message.split("\n")[0]}`,
            value: undefined,
          };
        }),
      );
    }
    return this.doc.toJS();
  }

  /** Line and column of the node at `path`, or of its nearest existing ancestor. */
  locate(path: DocPath): { line: number; column: number } | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) {
        const pos = this.lineCounter.linePos(node.range[0]);
        return { line: pos.line, column: pos.col };
      }
      // A key with a null value: locate the pair's key instead.
      if (n > 0) {
        const parent = this.doc.getIn(path.slice(0, n - 1), true) as
          | { items?: { key: unknown }[] }
          | undefined;
        const key = path[n - 1];
        const pair = parent?.items?.find(
          (it) => isNode(it.key) && (it.key as { value?: unknown }).value === key,
        );
        if (pair && isNode(pair.key) && pair.key.range) {
          const pos = this.lineCounter.linePos(pair.key.range[0]);
          return { line: pos.line, column: pos.col };
        }
      }
    }
    return undefined;
  }

  valueAt(path: DocPath): unknown {
    const v = this.doc.getIn(path);
    return isNode(v) ? v.toJSON() : v;
  }

  issue(path: DocPath, message: string, value?: unknown): ConfigIssue {
    const pos = this.locate(path);
    return {
      path: formatPath(path),
      line: pos?.line,
      column: pos?.column,
      message,
      value: value === undefined ? this.valueAt(path) : value,
    };
  }

  /** Parses `data` (or the part of the document at `base`) with a zod schema, or throws a ConfigError. */
  parse<S extends z.ZodType>(schema: S, data: unknown, base: DocPath = []): z.infer<S> {
    const result = schema.safeParse(data);
    if (result.success) return result.data;
    throw new ConfigError(
      this.file,
      result.error.issues.map((i) => {
        const path = [...base, ...(i.path as (string | number)[])];
        let message = i.message;
        if (i.code === "unrecognized_keys") message = `unknown field(s): ${i.keys.join(", ")}`;
        return this.issue(path, message);
      }),
    );
  }
}
