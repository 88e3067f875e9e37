/**
 * Quoting for names that must appear in dynamic DDL/DML. Values always travel as parameters; only
 * names (validated before they get here) are quoted into the statement text.
 */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains NUL');
  return `"${name.replaceAll('"', '""')}"`;
}

export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** A single-character COPY option as an E'' literal, so control characters survive. */
export function copyChar(ch: string): string {
  if (ch.length !== 1) throw new Error('COPY option must be one character');
  const code = ch.codePointAt(0)!;
  return `E'\\x${code.toString(16).padStart(2, '0')}'`;
}

export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) throw new Error('literal contains NUL');
  return `'${value.replaceAll("'", "''")}'`;
}
