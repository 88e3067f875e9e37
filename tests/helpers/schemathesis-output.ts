/**
 * The warnings and summary of a Schemathesis run, for the log, without its pytest-style closing
 * rule (`==== 3 warnings in 58.13s ====`): CI's log reader takes such a line for pytest closing on
 * no test executed, and judged a green suite as one that "ran no test".
 */
export function printableSummary(output: string): string {
  const from = output.indexOf('WARNINGS');
  return (from < 0 ? '' : output.slice(from))
    .split('\n')
    .filter((line) => !/^=+ .* in [\d.]+m?s =+$/.test(line.trim()))
    .join('\n');
}
