#!/usr/bin/env node
// The `autoloader` command. A build (dist/) is used when there is one; otherwise the TypeScript
// sources run through tsx, so the CLI works straight from a clone.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/cli/main.js', import.meta.url);
let cli;
if (existsSync(fileURLToPath(built))) {
  cli = await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
await cli.runCli();
