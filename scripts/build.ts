/**
 * The production build: the service compiled to JavaScript in `dist/` (tsc), with the files it
 * reads at run time beside it (migrations, the console's assets, the API docs' script), and the
 * workflows bundled once into `dist/workflow-bundle.js`, which `node dist/bin/worker.js` loads
 * instead of bundling them at every start. Run with `npm run build`; then `node dist/bin/api.js`,
 * `node dist/bin/worker.js`, `node dist/bin/token.js` — plain `node`, no tsx or npm in the process tree.
 * `--out-dir DIR` builds elsewhere (the build's test does, so as not to change what bin/autoloader.js
 * runs for the other tests); DIR's parent must find the project's node_modules.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundleWorkflowCode } from '@temporalio/worker';
import { quietBundlerLogger, toLogger } from '../src/dev/service.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const log = toLogger((line) => process.stderr.write(`[build] ${line}\n`));
const { values } = parseArgs({ options: { 'out-dir': { type: 'string' } } });
const out = values['out-dir'] ?? `${root}dist`;

rmSync(out, { recursive: true, force: true });
log.info(`compiling src/ to ${out} (tsc -p tsconfig.build.json)`);
execFileSync(
  process.execPath,
  [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.build.json`, '--outDir', out],
  { stdio: 'inherit' },
);
// What the compiled code reads beside itself (new URL('./…', import.meta.url)).
for (const dir of ['db/migrations', 'ui/assets', 'api/docs'])
  cpSync(`${root}src/${dir}`, `${out}/${dir}`, { recursive: true });
log.info(`bundling the workflows into ${out}/workflow-bundle.js`);
const { code } = await bundleWorkflowCode({
  workflowsPath: `${out}/workflows/index.js`,
  logger: quietBundlerLogger(log),
});
writeFileSync(`${out}/workflow-bundle.js`, code);
log.info(`done: node ${out}/bin/api.js, node ${out}/bin/worker.js, node ${out}/bin/token.js`);
