import { describe, expect, it } from 'vitest';
import {
  type CompareOp,
  type Condition,
  ConditionError,
  conditionFacts,
  conditionLimits,
  describeCondition,
  evaluateCondition,
  type FactName,
  type Facts,
  factNames,
  factsUsed,
  parseCondition,
  type Value,
} from '../../src/refresh/condition.js';

// AST builders, so expected trees read like the text they come from.
const fact = (name: FactName): Value => ({ kind: 'fact', name });
const num = (value: number): Value => ({ kind: 'number', value });
const bool = (value: boolean): Value => ({ kind: 'boolean', value });
const nul: Value = { kind: 'null' };
const cmp = (left: Value, op: CompareOp, right: Value): Condition => ({ kind: 'compare', op, left, right });
const and = (left: Condition, right: Condition): Condition => ({ kind: 'and', left, right });
const or = (left: Condition, right: Condition): Condition => ({ kind: 'or', left, right });
const not = (operand: Condition): Condition => ({ kind: 'not', operand });
const T: Condition = { kind: 'boolean', value: true };
const F: Condition = { kind: 'boolean', value: false };
const schemaChanged: Condition = { kind: 'fact', name: 'schema_changed' };
// Three distinguishable atoms for precedence tests.
const A = cmp(fact('file_count'), '>', num(1));
const B = cmp(fact('new_file_count'), '>', num(2));
const C = cmp(fact('failed_file_count'), '>', num(3));
const a = 'file_count > 1';
const b = 'new_file_count > 2';
const c = 'failed_file_count > 3';

const facts: Facts = {
  file_count: 120,
  new_file_count: 5,
  new_bytes: 2048,
  failed_file_count: 0,
  hours_since_last_success: 30,
  table_row_count: 1000,
  schema_changed: false,
};
const evalWith = (text: string, over: Partial<Facts> = {}) =>
  evaluateCondition(parseCondition(text), { ...facts, ...over });

function errorOf(text: string): ConditionError {
  try {
    parseCondition(text);
  } catch (e) {
    if (e instanceof ConditionError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

describe('conditionFacts', () => {
  it('declares exactly the seven documented facts with their types and nullability', () => {
    const declared = Object.fromEntries(
      Object.entries(conditionFacts).map(([name, spec]) => [name, `${spec.type}${spec.nullable ? '?' : ''}`]),
    );
    expect(declared).toEqual({
      file_count: 'number',
      new_file_count: 'number',
      new_bytes: 'number',
      failed_file_count: 'number',
      hours_since_last_success: 'number?',
      table_row_count: 'number?',
      schema_changed: 'boolean',
    });
    expect(factNames).toEqual(Object.keys(conditionFacts));
    for (const spec of Object.values(conditionFacts)) expect(spec.description.length).toBeGreaterThan(10);
  });
});

describe('parseCondition: structure', () => {
  it.each<[string, Condition]>([
    [a, A],
    ['schema_changed', schemaChanged],
    ['true', T],
    ['false', F],
    ['not schema_changed', not(schemaChanged)],
    // or < and
    [`${a} or ${b} and ${c}`, or(A, and(B, C))],
    [`${a} and ${b} or ${c}`, or(and(A, B), C)],
    // and < not
    [`not ${a} and ${b}`, and(not(A), B)],
    [`${a} and not ${b}`, and(A, not(B))],
    // not < comparison: `not x > 1` negates the comparison
    ['not file_count > 1', not(A)],
    // parentheses override
    [`(${a} or ${b}) and ${c}`, and(or(A, B), C)],
    [`${a} and (${b} or ${c})`, and(A, or(B, C))],
    [`not (${a} and ${b})`, not(and(A, B))],
    [`((${a}))`, A],
    // left associativity
    [`${a} and ${b} and ${c}`, and(and(A, B), C)],
    [`${a} or ${b} or ${c}`, or(or(A, B), C)],
    [`${a} and (${b} and ${c})`, and(A, and(B, C))],
    ['not not schema_changed', not(not(schemaChanged))],
  ])('%s', (text, expected) => {
    expect(parseCondition(text)).toEqual(expected);
  });

  it('gives precedence that changes the result, not only the tree', () => {
    // Equal precedence, left to right, would make both of these false.
    expect(evalWith('true or false and false')).toBe(true);
    expect(evalWith('not false and false')).toBe(false);
    expect(evalWith('not (false and false)')).toBe(true);
    expect(evalWith('(true or false) and false')).toBe(false);
  });

  it('accepts the symbolic operators as the words', () => {
    expect(parseCondition(`!schema_changed && ${a} || ${b}`)).toEqual(
      parseCondition(`not schema_changed and ${a} or ${b}`),
    );
  });

  it('reads keywords in any case', () => {
    expect(parseCondition(`NOT schema_changed AND ${a} Or TRUE`)).toEqual(or(and(not(schemaChanged), A), T));
    expect(parseCondition('table_row_count == NULL')).toEqual(cmp(fact('table_row_count'), '==', nul));
    expect(parseCondition('schema_changed == False')).toEqual(cmp(fact('schema_changed'), '==', bool(false)));
  });

  it('ignores spaces, tabs and newlines, and needs none around symbols', () => {
    const expected = and(A, not(schemaChanged));
    expect(parseCondition('file_count>1&&!schema_changed')).toEqual(expected);
    expect(parseCondition('\n\tfile_count\t>\r\n1 and\tnot  schema_changed  ')).toEqual(expected);
    expect(parseCondition('(file_count>1)and(not schema_changed)')).toEqual(expected);
  });

  it.each<[string, Value, CompareOp, Value]>([
    ['file_count < 1', fact('file_count'), '<', num(1)],
    ['file_count <= 1', fact('file_count'), '<=', num(1)],
    ['file_count > 1', fact('file_count'), '>', num(1)],
    ['file_count >= 1', fact('file_count'), '>=', num(1)],
    ['file_count == 1', fact('file_count'), '==', num(1)],
    ['file_count != 1', fact('file_count'), '!=', num(1)],
    ['100 < new_bytes', num(100), '<', fact('new_bytes')],
    ['new_bytes >= 2.5', fact('new_bytes'), '>=', num(2.5)],
    ['new_file_count > failed_file_count', fact('new_file_count'), '>', fact('failed_file_count')],
    ['hours_since_last_success > 24', fact('hours_since_last_success'), '>', num(24)],
    ['table_row_count <= 0', fact('table_row_count'), '<=', num(0)],
    ['schema_changed == true', fact('schema_changed'), '==', bool(true)],
    ['false != schema_changed', bool(false), '!=', fact('schema_changed')],
    ['hours_since_last_success == null', fact('hours_since_last_success'), '==', nul],
    ['null != table_row_count', nul, '!=', fact('table_row_count')],
  ])('parses the comparison %s', (text, left, op, right) => {
    expect(parseCondition(text)).toEqual(cmp(left, op, right));
  });

  it('reads integers and decimals, with leading zeros', () => {
    expect(parseCondition('new_bytes > 007')).toEqual(cmp(fact('new_bytes'), '>', num(7)));
    expect(parseCondition('new_bytes > 0.25')).toEqual(cmp(fact('new_bytes'), '>', num(0.25)));
    expect(parseCondition('new_bytes > 1099511627776')).toEqual(cmp(fact('new_bytes'), '>', num(2 ** 40)));
  });

  it('produces plain JSON-serialisable objects', () => {
    const parsed = parseCondition(`(${a} or table_row_count == null) and not schema_changed`);
    expect(JSON.parse(JSON.stringify(parsed))).toEqual(parsed);
    const protos = new Set<unknown>();
    const walk = (o: object) => {
      protos.add(Object.getPrototypeOf(o));
      for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) walk(v);
    };
    walk(parsed);
    expect([...protos]).toEqual([Object.prototype]);
  });
});

describe('parseCondition: errors name the position', () => {
  const known =
    'known: file_count, new_file_count, new_bytes, failed_file_count, hours_since_last_success, table_row_count, schema_changed';
  it.each<[string, string, number, string]>([
    // unknown facts
    ['unknown fact', 'files_count > 1', 0, `unknown fact "files_count" (${known}); did you mean file_count?`],
    ['unknown fact later on', `${a} and nothing_like_it`, 19, `unknown fact "nothing_like_it" (${known})`],
    ['fact names are case-sensitive', 'FILE_COUNT > 1', 0, 'did you mean file_count?'],
    ['__proto__ is no fact', '__proto__ > 1', 0, 'unknown fact "__proto__"'],
    ['constructor is no fact', 'constructor', 0, 'unknown fact "constructor"'],
    ['toString is no fact', 'file_count > 1 or toString == 1', 18, 'unknown fact "toString"'],
    ['hasOwnProperty is no fact', 'hasOwnProperty', 0, 'unknown fact "hasOwnProperty"'],
    // structure
    ['empty', '', 0, 'the condition is empty'],
    ['blank', '  \t ', 0, 'the condition is empty'],
    [
      'missing operand',
      'file_count > ',
      13,
      'expected a number, true, false, null or a fact but found end of input',
    ],
    [
      'missing condition after and',
      `${a} and`,
      18,
      'expected a number, true, false, null, a fact, "not" or "(" but found end of input',
    ],
    ['bare not', 'not', 3, 'but found end of input'],
    ['bare !', '!', 1, 'but found end of input'],
    ['leading and', 'and schema_changed', 0, 'but found "and"'],
    [
      'keyword as operand',
      'file_count > and',
      13,
      'expected a number, true, false, null or a fact but found "and"',
    ],
    ['empty parentheses', '()', 1, 'but found ")"'],
    ['trailing value', `${a} 2`, 15, 'expected "and", "or" or end of input but found "2"'],
    ['trailing fact', `${a} file_count`, 15, 'expected "and", "or" or end of input but found "file_count"'],
    [
      'comparing a parenthesised condition',
      `(${a}) > 2`,
      17,
      'expected "and", "or" or end of input but found ">"',
    ],
    ['unmatched )', `${a})`, 14, 'found ")" with no matching "("'],
    [
      'unclosed (',
      `(${a}`,
      15,
      'expected "and", "or" or ")" to close the "(" at position 0, but found end of input',
    ],
    ['unclosed outer (', `(schema_changed and (${a})`, 36, 'to close the "(" at position 0'],
    ['unclosed inner (', `schema_changed and (${a} or (${b})`, 58, 'to close the "(" at position 19'],
    ['chained comparison', '1 < file_count < 10', 15, 'comparisons do not chain; join them with "and"'],
    ['chained equality', 'schema_changed == true == false', 23, 'comparisons do not chain'],
    // bare values
    ['bare number fact', 'file_count', 0, 'file_count is a number; compare it, e.g. file_count > 0'],
    ['bare number fact in and', 'schema_changed and new_bytes', 19, 'new_bytes is a number; compare it'],
    ['bare number fact under not', 'not table_row_count', 4, 'table_row_count is a number; compare it'],
    ['bare number', '100', 0, '100 is a number, not a condition'],
    ['bare null', 'null', 0, 'null is not a condition'],
    // types
    [
      'number with boolean',
      'file_count == true',
      11,
      'cannot compare file_count (a number) with true (a boolean)',
    ],
    [
      'boolean with number',
      'schema_changed != 1',
      15,
      'cannot compare schema_changed (a boolean) with 1 (a number)',
    ],
    ['boolean fact with number fact', 'schema_changed == file_count', 15, 'cannot compare schema_changed'],
    [
      'ordering booleans',
      'schema_changed > false',
      15,
      '">" does not apply to booleans; compare them with == or !=',
    ],
    ['ordering boolean literals', 'true <= false', 5, '"<=" does not apply to booleans'],
    ['ordering null', 'table_row_count > null', 16, '">" does not apply to null; use == null or != null'],
    [
      'null with a non-nullable fact',
      'file_count == null',
      0,
      'file_count is never null (nullable facts: hours_since_last_success, table_row_count)',
    ],
    ['null with a non-nullable fact, reversed', 'null != schema_changed', 8, 'schema_changed is never null'],
    ['null with a number', '1 == null', 5, 'null can only be compared with a nullable fact'],
    ['null with null', 'null == null', 0, 'null can only be compared with a nullable fact'],
    // numbers
    ['1.2.3', '1.2.3 < file_count', 0, 'bad number "1.2.3": write digits with an optional decimal part'],
    ['trailing dot', 'file_count > 1.', 13, 'bad number "1."'],
    ['leading dot', 'file_count > .5', 13, 'bad number ".5"'],
    ['size suffix', 'new_bytes > 100GB', 12, 'bad number "100GB"'],
    ['exponent', 'new_bytes > 1e6', 12, 'bad number "1e6"'],
    ['too large', `new_bytes > ${'9'.repeat(400)}`, 12, 'is too large'],
    // characters
    ['dollar', 'file_count > $5', 13, 'unexpected character "$"'],
    ['semicolon', `${a}; process.exit()`, 14, 'unexpected character ";"'],
    ['unicode operator', 'file_count ≥ 1', 11, 'unexpected character U+2265'],
    ['control character', 'file_count > 1\u0000', 14, 'unexpected character U+0000'],
    ['minus', 'file_count > -1', 13, 'unexpected character "-"'],
    ['quote', "file_count > '1'", 13, `unexpected character "'"`],
    ['single =', 'file_count = 1', 11, '"=" is not an operator; write "==" to test equality'],
    ['===', 'file_count === 1', 11, '"===" is not an operator; write "=="'],
    ['!==', 'file_count !== 1', 11, '"!==" is not an operator; write "!="'],
    ['single &', `${a} & schema_changed`, 15, 'unexpected character "&"; write "and" or "&&"'],
    ['single |', `${a} | schema_changed`, 15, 'unexpected character "|"; write "or" or "||"'],
  ])('%s', (_name, text, position, detail) => {
    const e = errorOf(text);
    expect(e.position).toBe(position);
    expect(e.detail).toContain(detail);
    expect(e.message).toBe(`at position ${position}: ${e.detail}`);
    expect(e.name).toBe('ConditionError');
  });

  it('words the common mistakes as the API documents them', () => {
    expect(errorOf('file_count > ').message).toBe(
      'at position 13: expected a number, true, false, null or a fact but found end of input',
    );
    expect(errorOf('files_count > 1').message).toBe(
      `at position 0: unknown fact "files_count" (${known}); did you mean file_count?`,
    );
  });

  it('shortens a long name in the message', () => {
    const e = errorOf(`${'x'.repeat(900)} > 1`);
    expect(e.position).toBe(0);
    expect(e.detail).toContain(`unknown fact "${'x'.repeat(40)}…"`);
    expect(e.message.length).toBeLessThan(300);
  });

  it('rejects something that is not a string', () => {
    expect(errorOf(42 as unknown as string)).toMatchObject({
      position: 0,
      detail: 'the condition must be a string',
    });
  });
});

describe('parseCondition: limits', () => {
  const { maxLength, maxDepth, maxTokens } = conditionLimits;

  it('allows 1,000 characters and rejects 1,001 at position 1,000', () => {
    expect(conditionLimits).toEqual({ maxLength: 1000, maxDepth: 64, maxTokens: 200 });
    const longest = a.padEnd(maxLength, ' ');
    expect(parseCondition(longest)).toEqual(A);
    const e = errorOf(`${longest} `);
    expect(e.position).toBe(1000);
    expect(e.detail).toBe('the condition is 1,001 characters long; the limit is 1,000');
  });

  it('allows 200 tokens and rejects the 201st where it starts', () => {
    const trues = (n: number) => `true${' and true'.repeat(n - 1)}`; // 2n - 1 tokens
    expect(evalWith(`not ${trues(100)}`)).toBe(false); // 200 tokens
    const text = trues(101); // 201 tokens, well under the length limit
    expect(text.length).toBeLessThan(maxLength);
    const e = errorOf(text);
    expect(e.position).toBe(text.length - 'true'.length);
    expect(e.detail).toBe(`the condition has more than ${maxTokens} tokens`);
  });

  it('allows 64 levels of parentheses and rejects the 65th', () => {
    expect(parseCondition(`${'('.repeat(maxDepth)}schema_changed${')'.repeat(maxDepth)}`)).toEqual(
      schemaChanged,
    );
    const e = errorOf(`${'('.repeat(maxDepth + 1)}schema_changed${')'.repeat(maxDepth + 1)}`);
    expect(e.position).toBe(64);
    expect(e.detail).toBe('the condition nests deeper than 64 levels of parentheses and "not"');
  });

  it('counts "not" as a level of nesting', () => {
    expect(evalWith(`${'not '.repeat(maxDepth)}schema_changed`)).toBe(false);
    expect(evalWith(`${'! '.repeat(maxDepth - 1)}schema_changed`)).toBe(true);
    expect(errorOf(`${'not '.repeat(maxDepth + 1)}schema_changed`).position).toBe(64 * 'not '.length);
    // 'not (' repeated: the 65th level is the "not" of the 33rd repetition.
    expect(errorOf(`${'not ('.repeat(33)}schema_changed${')'.repeat(33)}`).position).toBe(
      32 * 'not ('.length,
    );
  });

  it('counts depth, not the number of groups side by side', () => {
    // 80 "(" in all, more than the limit, but never more than 40 open at once (163 tokens).
    const group = `${'('.repeat(40)}true${')'.repeat(40)}`;
    expect(parseCondition(`${group} and ${group}`)).toEqual(and(T, T));
  });
});

describe('evaluateCondition', () => {
  it.each<[string, Partial<Facts>, boolean]>([
    ['file_count > 100', {}, true],
    ['file_count > 120', {}, false],
    ['file_count >= 120', {}, true],
    ['file_count < 120', {}, false],
    ['file_count <= 120', {}, true],
    ['file_count <= 119.5', {}, false],
    ['file_count == 120', {}, true],
    ['file_count == 121', {}, false],
    ['file_count != 121', {}, true],
    ['file_count != 120', {}, false],
    ['100 < file_count', {}, true],
    ['new_bytes > 2047.5', {}, true],
    ['new_file_count > failed_file_count', {}, true],
    ['new_file_count > failed_file_count', { failed_file_count: 5 }, false],
    ['schema_changed', {}, false],
    ['schema_changed', { schema_changed: true }, true],
    ['not schema_changed', {}, true],
    ['schema_changed == false', {}, true],
    ['schema_changed != false', { schema_changed: true }, true],
    ['schema_changed == true', {}, false],
    ['file_count > 100 and not schema_changed', {}, true],
    ['file_count > 100 and not schema_changed', { schema_changed: true }, false],
    ['file_count > 1000 or schema_changed', { schema_changed: true }, true],
    ['file_count > 1000 or schema_changed', {}, false],
    // nullable facts with a value
    ['hours_since_last_success > 24', {}, true],
    ['hours_since_last_success == null', {}, false],
    ['hours_since_last_success != null', {}, true],
    ['table_row_count == 1000', {}, true],
    // nullable facts without one: only == null / != null can be true
    ['hours_since_last_success == null', { hours_since_last_success: null }, true],
    ['hours_since_last_success != null', { hours_since_last_success: null }, false],
    ['null == hours_since_last_success', { hours_since_last_success: null }, true],
    ['hours_since_last_success > 24', { hours_since_last_success: null }, false],
    ['hours_since_last_success <= 24', { hours_since_last_success: null }, false],
    ['table_row_count == 0', { table_row_count: null }, false],
    ['table_row_count != 0', { table_row_count: null }, false],
    ['not (table_row_count > 0)', { table_row_count: null }, true],
    ['table_row_count == null or table_row_count == 0', { table_row_count: null }, true],
    ['table_row_count == null or table_row_count == 0', { table_row_count: 0 }, true],
    ['table_row_count == null or table_row_count == 0', {}, false],
    [
      'hours_since_last_success == table_row_count',
      { hours_since_last_success: null, table_row_count: null },
      false,
    ],
    ['hours_since_last_success < table_row_count', {}, true],
  ])('%s with %o is %s', (text, over, expected) => {
    expect(evalWith(text, over)).toBe(expected);
  });

  it('refuses facts it was not given or given the wrong type', () => {
    const c = parseCondition('file_count > 1');
    const { file_count: _, ...rest } = facts;
    expect(() => evaluateCondition(c, rest as Facts)).toThrow('fact file_count is missing');
    const inherited = Object.assign(Object.create({ file_count: 5 }), rest) as Facts;
    expect(() => evaluateCondition(c, inherited)).toThrow('fact file_count is missing');
    expect(() => evaluateCondition(c, { ...facts, file_count: null } as unknown as Facts)).toThrow(
      'fact file_count must be a number',
    );
    expect(() => evaluateCondition(c, { ...facts, file_count: '5' } as unknown as Facts)).toThrow(
      'must be a number',
    );
    expect(() =>
      evaluateCondition(schemaChanged, { ...facts, schema_changed: 1 } as unknown as Facts),
    ).toThrow('fact schema_changed must be a boolean');
  });

  it('refuses a hand-made condition naming something that is not a fact', () => {
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const c = { kind: 'fact', name } as unknown as Condition;
      const withProp = { ...facts, [name]: true } as Facts;
      expect(() => evaluateCondition(c, withProp)).toThrow(`condition names an unknown fact "${name}"`);
    }
    expect(() => evaluateCondition({ kind: 'xor' } as unknown as Condition, facts)).toThrow(
      'not a condition node: "xor"',
    );
  });

  it('evaluates a condition that went through JSON', () => {
    const c = JSON.parse(JSON.stringify(parseCondition('new_file_count > 3 and table_row_count != null')));
    expect(evaluateCondition(c, facts)).toBe(true);
    expect(evaluateCondition(c, { ...facts, table_row_count: null })).toBe(false);
  });
});

describe('describeCondition', () => {
  it.each<[string, string]>([
    ['file_count>100', 'file_count > 100'],
    ['file_count > 100 and not schema_changed', '(file_count > 100) and not schema_changed'],
    ['schema_changed == TRUE', 'schema_changed == true'],
    [`${a} || ${b} && ${c}`, `(${a}) or ((${b}) and (${c}))`],
    [`(${a} or ${b}) and ${c}`, `((${a}) or (${b})) and (${c})`],
    [`${a} and ${b} and ${c}`, `(${a}) and (${b}) and (${c})`],
    [`${a} and (${b} and ${c})`, `(${a}) and ((${b}) and (${c}))`],
    ['! !schema_changed', 'not not schema_changed'],
    ['NOT file_count > 1', 'not (file_count > 1)'],
    ['not (schema_changed or TRUE)', 'not (schema_changed or true)'],
    ['table_row_count == NULL', 'table_row_count == null'],
    ['new_bytes > 2.50', 'new_bytes > 2.5'],
    ['new_bytes > 007', 'new_bytes > 7'],
    ['new_bytes > 0.0000001', 'new_bytes > 0.0000001'],
    ['new_bytes > 0.00000012345', 'new_bytes > 0.00000012345'],
    ['new_bytes > 100000000000000000000000', 'new_bytes > 99999999999999991611392'],
  ])('%s reads %s', (text, canonical) => {
    expect(describeCondition(parseCondition(text))).toBe(canonical);
  });

  it.each([
    'file_count > 100',
    'schema_changed',
    'true',
    'false or not false',
    'not not not schema_changed',
    `${a} or ${b} and ${c}`,
    `${a} and ${b} or ${c}`,
    `(${a} or ${b}) and ${c}`,
    `${a} and (${b} and ${c})`,
    `${a} or (${b} or ${c})`,
    `(${a} or ${b}) or ${c}`,
    `not (${a} or ${b}) and not ${c}`,
    `not ${a} and ${b}`,
    '!(schema_changed && hours_since_last_success >= 24) || table_row_count == null',
    'null != table_row_count and 1 < new_file_count',
    'false != schema_changed',
    'new_bytes >= 0.000001 or new_bytes < 0.0000005 or new_bytes == 12345678901234567890',
    `${'('.repeat(20)}schema_changed${')'.repeat(20)} and (((${a})))`,
  ])('round-trips %s', (text) => {
    const parsed = parseCondition(text);
    const canonical = describeCondition(parsed);
    expect(parseCondition(canonical)).toEqual(parsed);
    expect(describeCondition(parseCondition(canonical))).toBe(canonical);
  });
});

describe('factsUsed', () => {
  it('lists each fact once, in order of first appearance', () => {
    expect(
      factsUsed(
        parseCondition(
          'table_row_count == null or (schema_changed and file_count > 1) or not file_count < new_file_count',
        ),
      ),
    ).toEqual(['table_row_count', 'schema_changed', 'file_count', 'new_file_count']);
    expect(factsUsed(parseCondition('1 < new_bytes'))).toEqual(['new_bytes']);
  });

  it('is empty for a constant condition', () => {
    expect(factsUsed(parseCondition('true and not false'))).toEqual([]);
  });
});
