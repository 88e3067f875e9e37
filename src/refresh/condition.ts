/**
 * Seed 001's conditional refresh (`POST /ingestions/{id}/refresh-if`): an operation runs only when a
 * small boolean expression over named facts about the ingestion holds, e.g.
 * `new_file_count > 100 and not schema_changed`.
 *
 * The text comes from strangers, so it is read by a hand-written recursive-descent parser: nothing is
 * ever evaluated as code, length, tokens and nesting are bounded before any work is proportional to
 * them, fact names are looked up in a Map (so `__proto__`, `constructor` and `toString` are just unknown
 * facts), types are checked while parsing, and every mistake is reported with its position. The parsed
 * Condition is plain data (no classes, no positions) because it travels in Temporal workflow inputs.
 *
 * Grammar (EBNF; keywords are case-insensitive, fact names are not):
 *
 *   condition  = or_expr ;
 *   or_expr    = and_expr { ( "or" | "||" ) and_expr } ;          (* left-associative *)
 *   and_expr   = not_expr { ( "and" | "&&" ) not_expr } ;         (* left-associative *)
 *   not_expr   = ( "not" | "!" ) not_expr | primary ;
 *   primary    = "(" condition ")" | comparison ;
 *   comparison = value [ compare_op value ] ;                    (* no chaining: a < b < c is an error *)
 *   compare_op = "<" | "<=" | ">" | ">=" | "==" | "!=" ;
 *   value      = number | "true" | "false" | "null" | fact ;
 *   number     = digit { digit } [ "." digit { digit } ] ;
 *   fact       = one of the names in conditionFacts ;
 *
 * Whitespace is space, tab, CR and LF. A single `=` is rejected (with a hint to write `==`) rather than
 * accepted as a synonym: one spelling per operator keeps the canonical text and the docs simple, and
 * `=` vs `==` is a classic source of "which one did they mean" doubt. There is no unary minus: every
 * fact is non-negative.
 *
 * Type rules, checked at parse time: numbers compare with numbers by any operator; booleans only with
 * `==`/`!=` against booleans; `null` only with `==`/`!=` and only against a nullable fact. A bare boolean
 * (fact or literal) is a condition; a bare number or `null` is an error.
 *
 * Evaluation of a null fact value: `fact == null` / `fact != null` test for it; every other comparison
 * that meets a null value is false, whatever the operator (so `table_row_count != 5` is false when the
 * table does not exist, and `not (table_row_count > 5)` is true). This is SQL's rule, which people
 * writing conditions about tables already expect.
 */

interface FactSpec {
  readonly type: 'number' | 'boolean';
  readonly nullable: boolean;
  readonly description: string;
}

/** The facts a condition may name: the API docs and the unknown-fact error list them from here. */
export const conditionFacts = Object.freeze({
  file_count: { type: 'number', nullable: false, description: 'Files matching the source now.' },
  new_file_count: {
    type: 'number',
    nullable: false,
    description: 'Files a run would load now: new, changed, or failed with retries left.',
  },
  new_bytes: {
    type: 'number',
    nullable: false,
    description: 'Total bytes of the files a run would load now.',
  },
  failed_file_count: {
    type: 'number',
    nullable: false,
    description: 'Files currently FAILED in the file history.',
  },
  hours_since_last_success: {
    type: 'number',
    nullable: true,
    description: 'Hours since the last successful run; null when no run ever succeeded.',
  },
  table_row_count: {
    type: 'number',
    nullable: true,
    description: 'Rows in the destination table; null when the table does not exist.',
  },
  schema_changed: {
    type: 'boolean',
    nullable: false,
    description: 'Whether the schema changed since the last refresh.',
  },
} as const satisfies Record<string, FactSpec>);

export type FactName = keyof typeof conditionFacts;
type FactValue<S extends FactSpec> =
  | (S['type'] extends 'number' ? number : boolean)
  | (S['nullable'] extends true ? null : never);
/** The values a condition is evaluated against. */
export type Facts = { [K in FactName]: FactValue<(typeof conditionFacts)[K]> };
export type BooleanFactName = {
  [K in FactName]: (typeof conditionFacts)[K]['type'] extends 'boolean' ? K : never;
}[FactName];

export const factNames = Object.freeze(Object.keys(conditionFacts)) as readonly FactName[];
// Lookups go through this Map, never `conditionFacts[name]`, so no name reaches Object.prototype.
const factSpecs: ReadonlyMap<string, FactSpec> = new Map(Object.entries(conditionFacts));

export const conditionLimits = Object.freeze({ maxLength: 1000, maxDepth: 64, maxTokens: 200 });

export type CompareOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

/** An operand of a comparison. */
export type Value =
  | { kind: 'fact'; name: FactName }
  | { kind: 'number'; value: number }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'null' };

/** A parsed condition: plain, JSON-serialisable objects only. */
export type Condition =
  | { kind: 'or'; left: Condition; right: Condition }
  | { kind: 'and'; left: Condition; right: Condition }
  | { kind: 'not'; operand: Condition }
  | { kind: 'compare'; op: CompareOp; left: Value; right: Value }
  | { kind: 'fact'; name: BooleanFactName }
  | { kind: 'boolean'; value: boolean };

/** A condition the caller wrote wrongly; `position` is the 0-based offset (JavaScript string index). */
export class ConditionError extends Error {
  override name = 'ConditionError';
  constructor(
    readonly position: number,
    /** The message without its "at position N: " prefix. */
    readonly detail: string,
  ) {
    super(`at position ${position}: ${detail}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Lexer

type Keyword = 'and' | 'or' | 'not' | 'true' | 'false' | 'null';
const keywords: ReadonlySet<string> = new Set<Keyword>(['and', 'or', 'not', 'true', 'false', 'null']);

type Token =
  | { kind: 'number'; value: number; text: string; pos: number }
  | { kind: 'name'; text: string; pos: number }
  | { kind: 'keyword'; keyword: Keyword; text: string; pos: number }
  | { kind: 'op'; op: CompareOp; text: string; pos: number }
  | { kind: '(' | ')'; text: string; pos: number }
  | { kind: 'end'; text: ''; pos: number };

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isNameStart = (c: string | undefined) =>
  c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_');
const isNamePart = (c: string | undefined) => isNameStart(c) || isDigit(c);
const isWhitespace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r';

/** Long user text is shortened before it goes into a message. */
function quote(text: string): string {
  return `"${text.length > 40 ? `${text.slice(0, 40)}…` : text}"`;
}

function showChar(text: string, i: number): string {
  const cp = text.codePointAt(i)!;
  // Only printable ASCII is echoed; anything else (controls, look-alikes) is named by code point.
  return cp > 0x20 && cp < 0x7f
    ? `"${String.fromCodePoint(cp)}"`
    : `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const push = (t: Token) => {
    if (tokens.length === conditionLimits.maxTokens) {
      throw new ConditionError(t.pos, `the condition has more than ${conditionLimits.maxTokens} tokens`);
    }
    tokens.push(t);
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (isWhitespace(c)) {
      i++;
      continue;
    }
    const pos = i;
    if (isDigit(c) || (c === '.' && isDigit(text[i + 1]))) {
      // Take the whole run of number-ish characters so `1.2.3` and `100GB` are one bad literal.
      while (i < text.length && (isNamePart(text[i]) || text[i] === '.')) i++;
      const run = text.slice(pos, i);
      if (!/^[0-9]+(\.[0-9]+)?$/.test(run)) {
        throw new ConditionError(
          pos,
          `bad number ${quote(run)}: write digits with an optional decimal part, e.g. 100 or 2.5`,
        );
      }
      const value = Number(run);
      if (!Number.isFinite(value)) throw new ConditionError(pos, `number ${quote(run)} is too large`);
      push({ kind: 'number', value, text: run, pos });
      continue;
    }
    if (isNameStart(c)) {
      while (i < text.length && isNamePart(text[i])) i++;
      const word = text.slice(pos, i);
      const lower = word.toLowerCase();
      push(
        keywords.has(lower)
          ? { kind: 'keyword', keyword: lower as Keyword, text: word, pos }
          : { kind: 'name', text: word, pos },
      );
      continue;
    }
    const three = text.slice(i, i + 3);
    if (three === '===' || three === '!==') {
      throw new ConditionError(pos, `"${three}" is not an operator; write "${three.slice(0, 2)}"`);
    }
    const two = text.slice(i, i + 2);
    if (two === '<=' || two === '>=' || two === '==' || two === '!=') {
      push({ kind: 'op', op: two, text: two, pos });
      i += 2;
      continue;
    }
    if (two === '&&' || two === '||') {
      push({ kind: 'keyword', keyword: two === '&&' ? 'and' : 'or', text: two, pos });
      i += 2;
      continue;
    }
    switch (c) {
      case '<':
      case '>':
        push({ kind: 'op', op: c, text: c, pos });
        break;
      case '!':
        push({ kind: 'keyword', keyword: 'not', text: c, pos });
        break;
      case '(':
      case ')':
        push({ kind: c, text: c, pos });
        break;
      case '=':
        throw new ConditionError(pos, '"=" is not an operator; write "==" to test equality');
      case '&':
        throw new ConditionError(pos, 'unexpected character "&"; write "and" or "&&"');
      case '|':
        throw new ConditionError(pos, 'unexpected character "|"; write "or" or "||"');
      default:
        throw new ConditionError(pos, `unexpected character ${showChar(text, i)}`);
    }
    i++;
  }
  tokens.push({ kind: 'end', text: '', pos: text.length });
  return tokens;
}

// ---------------------------------------------------------------------------------------------------
// Parser and type check

interface Located {
  value: Value;
  pos: number;
}

const found = (t: Token) => (t.kind === 'end' ? 'end of input' : quote(t.text));

function describeType(v: Value): string {
  if (v.kind === 'fact') return `${v.name} (a ${factSpecs.get(v.name)!.type})`;
  return `${describeValue(v)} (a ${v.kind})`;
}

const nullableFacts = () => factNames.filter((n) => factSpecs.get(n)!.nullable).join(', ');

function isFactName(name: string): name is FactName {
  return factSpecs.has(name);
}

function isBooleanFact(name: FactName): name is BooleanFactName {
  return factSpecs.get(name)!.type === 'boolean';
}

function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

function unknownFact(name: string, pos: number): ConditionError {
  let hint = '';
  // Only short names are worth a suggestion (and keep the edit distance cheap).
  if (name.length <= 40) {
    const near =
      factNames.find((f) => f === name.toLowerCase()) ?? factNames.find((f) => distance(f, name) <= 2);
    if (near) hint = `; did you mean ${near}?`;
  }
  return new ConditionError(pos, `unknown fact ${quote(name)} (known: ${factNames.join(', ')})${hint}`);
}

class Parser {
  private i = 0;
  private depth = 0;

  constructor(private readonly tokens: Token[]) {}

  parse(): Condition {
    const condition = this.orExpr();
    const t = this.peek();
    if (t.kind === ')') throw new ConditionError(t.pos, 'found ")" with no matching "("');
    if (t.kind !== 'end') {
      throw new ConditionError(t.pos, `expected "and", "or" or end of input but found ${found(t)}`);
    }
    return condition;
  }

  private peek(): Token {
    return this.tokens[this.i]!;
  }

  private next(): Token {
    // The final 'end' token is never consumed, so the index stays in range.
    return this.tokens[this.i++]!;
  }

  private isKeyword(keyword: Keyword): boolean {
    const t = this.peek();
    return t.kind === 'keyword' && t.keyword === keyword;
  }

  private enter(t: Token): void {
    if (++this.depth > conditionLimits.maxDepth) {
      throw new ConditionError(
        t.pos,
        `the condition nests deeper than ${conditionLimits.maxDepth} levels of parentheses and "not"`,
      );
    }
  }

  private orExpr(): Condition {
    let left = this.andExpr();
    while (this.isKeyword('or')) {
      this.next();
      left = { kind: 'or', left, right: this.andExpr() };
    }
    return left;
  }

  private andExpr(): Condition {
    let left = this.notExpr();
    while (this.isKeyword('and')) {
      this.next();
      left = { kind: 'and', left, right: this.notExpr() };
    }
    return left;
  }

  private notExpr(): Condition {
    if (!this.isKeyword('not')) return this.primary();
    this.enter(this.next());
    const operand = this.notExpr();
    this.depth--;
    return { kind: 'not', operand };
  }

  private primary(): Condition {
    const open = this.peek();
    if (open.kind !== '(') return this.comparison();
    this.enter(this.next());
    const inner = this.orExpr();
    const close = this.peek();
    if (close.kind !== ')') {
      throw new ConditionError(
        close.pos,
        `expected "and", "or" or ")" to close the "(" at position ${open.pos}, but found ${found(close)}`,
      );
    }
    this.next();
    this.depth--;
    return inner;
  }

  private comparison(): Condition {
    const left = this.value('a number, true, false, null, a fact, "not" or "("');
    const op = this.peek();
    if (op.kind !== 'op') return asCondition(left);
    this.next();
    const right = this.value('a number, true, false, null or a fact');
    typeCheck(left, op, right);
    const after = this.peek();
    if (after.kind === 'op') {
      throw new ConditionError(
        after.pos,
        'comparisons do not chain; join them with "and", e.g. 10 < file_count and file_count < 100',
      );
    }
    return { kind: 'compare', op: op.op, left: left.value, right: right.value };
  }

  private value(expected: string): Located {
    const t = this.peek();
    const pos = t.pos;
    if (t.kind === 'number') {
      this.next();
      return { value: { kind: 'number', value: t.value }, pos };
    }
    if (t.kind === 'keyword' && (t.keyword === 'true' || t.keyword === 'false')) {
      this.next();
      return { value: { kind: 'boolean', value: t.keyword === 'true' }, pos };
    }
    if (t.kind === 'keyword' && t.keyword === 'null') {
      this.next();
      return { value: { kind: 'null' }, pos };
    }
    if (t.kind === 'name') {
      if (!isFactName(t.text)) throw unknownFact(t.text, pos);
      this.next();
      return { value: { kind: 'fact', name: t.text }, pos };
    }
    throw new ConditionError(pos, `expected ${expected} but found ${found(t)}`);
  }
}

/** A value standing alone where a condition is expected: only a boolean will do. */
function asCondition({ value, pos }: Located): Condition {
  switch (value.kind) {
    case 'boolean':
      return value;
    case 'fact':
      if (isBooleanFact(value.name)) return { kind: 'fact', name: value.name };
      throw new ConditionError(pos, `${value.name} is a number; compare it, e.g. ${value.name} > 0`);
    case 'number': {
      const n = describeValue(value);
      throw new ConditionError(
        pos,
        `${n} is a number, not a condition; compare a fact with it, e.g. file_count > ${n}`,
      );
    }
    case 'null':
      throw new ConditionError(
        pos,
        'null is not a condition; compare a nullable fact with it, e.g. table_row_count == null',
      );
  }
}

function typeOf(v: Value): 'number' | 'boolean' | 'null' {
  return v.kind === 'fact' ? factSpecs.get(v.name)!.type : v.kind;
}

function typeCheck(left: Located, op: Extract<Token, { kind: 'op' }>, right: Located): void {
  const equality = op.op === '==' || op.op === '!=';
  if (left.value.kind === 'null' || right.value.kind === 'null') {
    if (!equality) {
      throw new ConditionError(op.pos, `"${op.op}" does not apply to null; use == null or != null`);
    }
    const [nul, other] = left.value.kind === 'null' ? [left, right] : [right, left];
    if (other.value.kind === 'fact') {
      if (factSpecs.get(other.value.name)!.nullable) return;
      throw new ConditionError(
        other.pos,
        `${other.value.name} is never null (nullable facts: ${nullableFacts()})`,
      );
    }
    throw new ConditionError(nul.pos, `null can only be compared with a nullable fact (${nullableFacts()})`);
  }
  const lt = typeOf(left.value);
  if (lt !== typeOf(right.value)) {
    throw new ConditionError(
      op.pos,
      `cannot compare ${describeType(left.value)} with ${describeType(right.value)}`,
    );
  }
  if (lt === 'boolean' && !equality) {
    throw new ConditionError(op.pos, `"${op.op}" does not apply to booleans; compare them with == or !=`);
  }
}

/** Parses and type-checks a condition; throws ConditionError naming the position of the first mistake. */
export function parseCondition(text: string): Condition {
  if (typeof text !== 'string') throw new ConditionError(0, 'the condition must be a string');
  if (text.length > conditionLimits.maxLength) {
    throw new ConditionError(
      conditionLimits.maxLength,
      `the condition is ${text.length.toLocaleString('en-US')} characters long; the limit is ${conditionLimits.maxLength.toLocaleString('en-US')}`,
    );
  }
  const tokens = tokenize(text);
  if (tokens.length === 1) {
    throw new ConditionError(0, 'the condition is empty; write one, e.g. new_file_count > 0');
  }
  return new Parser(tokens).parse();
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

// The Condition may have crossed a serialisation boundary, and Facts are gathered at run time, so both
// are checked here too; a failure is a bug in our code, not the caller's, hence a plain Error.
function factValue(facts: Facts, name: string): number | boolean | null {
  const spec = factSpecs.get(name);
  if (!spec) throw new Error(`condition names an unknown fact ${quote(name)}`);
  if (!Object.hasOwn(facts, name)) throw new Error(`fact ${name} is missing`);
  const v: unknown = facts[name as FactName];
  const ok = v === null ? spec.nullable : typeof v === spec.type && !Number.isNaN(v);
  if (!ok) throw new Error(`fact ${name} must be a ${spec.type}${spec.nullable ? ' or null' : ''}`);
  return v as number | boolean | null;
}

function operand(v: Value, facts: Facts): number | boolean | null {
  switch (v.kind) {
    case 'fact':
      return factValue(facts, v.name);
    case 'number':
    case 'boolean':
      return v.value;
    case 'null':
      return null;
  }
}

function compare(c: Extract<Condition, { kind: 'compare' }>, facts: Facts): boolean {
  const l = operand(c.left, facts);
  const r = operand(c.right, facts);
  const withNull = c.left.kind === 'null' || c.right.kind === 'null';
  if (withNull && c.op === '==') return l === r;
  if (withNull && c.op === '!=') return l !== r;
  // A null fact value makes every other comparison false (see the module comment).
  if (l === null || r === null) return false;
  if (typeof l === 'boolean' || typeof r === 'boolean') {
    if (c.op === '==') return l === r;
    if (c.op === '!=') return l !== r;
    throw new Error(`"${c.op}" does not apply to booleans`);
  }
  switch (c.op) {
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '>':
      return l > r;
    case '>=':
      return l >= r;
    case '==':
      return l === r;
    case '!=':
      return l !== r;
  }
}

export function evaluateCondition(c: Condition, facts: Facts): boolean {
  switch (c.kind) {
    case 'or':
      return evaluateCondition(c.left, facts) || evaluateCondition(c.right, facts);
    case 'and':
      return evaluateCondition(c.left, facts) && evaluateCondition(c.right, facts);
    case 'not':
      return !evaluateCondition(c.operand, facts);
    case 'compare':
      return compare(c, facts);
    case 'fact':
      return factValue(facts, c.name) === true;
    case 'boolean':
      return c.value;
    default:
      throw new Error(`not a condition node: ${quote(String((c as { kind?: unknown }).kind))}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Canonical text

function describeNumber(n: number): string {
  // The canonical text must parse back to the same number, and the grammar has no exponents.
  if (Number.isInteger(n)) return BigInt(n).toString();
  const s = String(n);
  const m = /^(\d)(?:\.(\d+))?e-(\d+)$/.exec(s);
  if (!m) return s;
  // Non-integers only use exponents when tiny (below 1e-6): shift the shortest digits right.
  return `0.${'0'.repeat(Number(m[3]) - 1)}${m[1]}${m[2] ?? ''}`;
}

function describeValue(v: Value): string {
  switch (v.kind) {
    case 'fact':
      return v.name;
    case 'number':
      return describeNumber(v.value);
    case 'boolean':
      return String(v.value);
    case 'null':
      return 'null';
  }
}

/**
 * Canonical text: lowercase word operators, single spaces, and parentheses wherever grouping is not
 * obvious — around a comparison inside and/or/not, around `and` inside `or`, and around a right operand
 * of the same operator (the parser associates to the left). `parseCondition` of it gives back an equal
 * Condition; it may run past the length limit when the original was near it.
 */
export function describeCondition(c: Condition): string {
  switch (c.kind) {
    case 'compare':
      return `${describeValue(c.left)} ${c.op} ${describeValue(c.right)}`;
    case 'fact':
      return c.name;
    case 'boolean':
      return String(c.value);
    case 'not':
      return `not ${describeChild(c.operand, c, false)}`;
    case 'and':
    case 'or':
      return `${describeChild(c.left, c, true)} ${c.kind} ${describeChild(c.right, c, false)}`;
  }
}

function describeChild(child: Condition, parent: Condition, isLeft: boolean): string {
  const text = describeCondition(child);
  const bare =
    child.kind === 'fact' ||
    child.kind === 'boolean' ||
    child.kind === 'not' ||
    (isLeft && child.kind === parent.kind);
  return bare ? text : `(${text})`;
}

/** The facts a condition reads, each once, in order of first appearance. */
export function factsUsed(c: Condition): FactName[] {
  const used = new Set<FactName>();
  const visitValue = (v: Value) => {
    if (v.kind === 'fact') used.add(v.name);
  };
  const visit = (n: Condition): void => {
    switch (n.kind) {
      case 'or':
      case 'and':
        visit(n.left);
        visit(n.right);
        return;
      case 'not':
        visit(n.operand);
        return;
      case 'compare':
        visitValue(n.left);
        visitValue(n.right);
        return;
      case 'fact':
        used.add(n.name);
        return;
      case 'boolean':
        return;
    }
  };
  visit(c);
  return [...used];
}
