import { createInterface } from 'node:readline';

/**
 * Everything the CLI reads from or writes to the terminal goes through this, so commands can be
 * driven by tests with a fake, and `src/` stays free of `console`.
 */
export interface Io {
  /** Data for the user or a script: tables, lines, `--json` documents. */
  out(text: string): void;
  /** Diagnostics, prompts and progress: kept off stdout so `--json | jq` stays clean. */
  err(text: string): void;
  /** Whether a person can answer a question on stdin. */
  readonly interactive: boolean;
  /** Whether stderr is a terminal, i.e. whether a `\r`-redrawn progress bar makes sense. */
  readonly progressTty: boolean;
  /** Terminal width for the progress bar. */
  readonly columns: number;
  /** Asks on stderr and reads one line from stdin; null when stdin ends first. */
  ask(question: string): Promise<string | null>;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function processIo(): Io {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    interactive: process.stdin.isTTY === true,
    progressTty: process.stderr.isTTY === true,
    // A pseudo-terminal may report 0 columns: treat that as unknown.
    columns: process.stderr.columns || 80,
    ask: (question) =>
      new Promise((resolve) => {
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        let answered = false;
        // Ctrl-D closes the interface without an answer: that is a "no", not a hang.
        rl.once('close', () => {
          if (!answered) resolve(null);
        });
        // In raw mode Ctrl-C reaches readline, not the process; unhandled, it would only pause input.
        rl.once('SIGINT', () => rl.close());
        rl.question(question, (answer) => {
          answered = true;
          rl.close();
          resolve(answer);
        });
      }),
    env: process.env,
  };
}

/** Prints one JSON document (the API's body as received) for scripts. */
export function printJson(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}
