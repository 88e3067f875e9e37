/**
 * Installs the programs the stack and its tests run beside Node, each at its pinned version, from
 * the package registries only (pip, the Go module proxy, npm), into user-writable places — the
 * same way the launchers in src/dev install them when they find them missing. Idempotent: what is
 * there is found and left alone.
 *
 *   npm run provision                  everything the test suite needs
 *   npm run provision -- temporal      just some of them
 *   (postinstall)                      the Temporal CLI, never failing the install
 *
 * Root-only parts (Debian's chromium and openssh-server) are checked, not installed: `npm run
 * setup:system` installs them.
 */
import { parseArgs } from 'node:util';
import { ensureAzurite } from '../src/dev/azurite.js';
import { ensureFakeGcs } from '../src/dev/fake-gcs.js';
import { ensurePyftpdlib } from '../src/dev/ftp.js';
import { ensureMinio } from '../src/dev/minio.js';
import { pipTool, schemathesis } from '../src/dev/provision.js';
import { findExecutable } from '../src/dev/service.js';
import { ensureTemporalCli } from '../src/dev/temporal.js';

const say = (msg: string) => process.stderr.write(`[provision] ${msg}\n`);

const tools: Record<string, () => Promise<string>> = {
  temporal: () => ensureTemporalCli(say),
  minio: () => ensureMinio(say),
  'fake-gcs-server': () => ensureFakeGcs(say),
  azurite: () => ensureAzurite(say),
  pyftpdlib: async () => {
    await ensurePyftpdlib(say);
    return 'python3 -m pyftpdlib';
  },
  schemathesis: () => pipTool(schemathesis, say),
  chromium: async () => {
    const found = await findExecutable('chromium');
    if (!found) throw new Error('chromium is not installed: sudo npm run setup:system (Debian package)');
    return found;
  },
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { postinstall: { type: 'boolean', default: false } },
});

async function main(): Promise<number> {
  if (values.postinstall) {
    // npm install must not fail for want of Python: npm start then says what to run.
    if (process.env.AUTOLOADER_SKIP_PROVISION) return 0;
    try {
      await tools.temporal!();
    } catch (err) {
      say(
        `could not install the Temporal CLI (${firstLine(err)}); npm start needs it: run npm run provision`,
      );
    }
    return 0;
  }
  const wanted = positionals.length > 0 ? positionals : Object.keys(tools);
  const unknown = wanted.filter((name) => !(name in tools));
  if (unknown.length > 0) {
    say(`unknown tool(s): ${unknown.join(', ')}; known: ${Object.keys(tools).join(', ')}`);
    return 2;
  }
  let failed = 0;
  for (const name of wanted) {
    try {
      say(`${name}: ${await tools[name]!()}`);
    } catch (err) {
      failed++;
      say(`${name}: FAILED — ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return failed === 0 ? 0 : 1;
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

process.exitCode = await main();
