import { Readable } from 'node:stream';
import { startEmbeddedPostgres } from './src/dev/postgres.js';
import { createDb } from './src/db/client.js';
import { loadFile } from './src/load/load-file.js';
const pg = await startEmbeddedPostgres({ dataDir: '/tmp/dbg/pg', port: 0, log: () => {}, postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off'] });
const { sql, close } = createDb(pg.url);
await sql`drop table if exists raw.dbg`;
const t0 = performance.now();
for (let i = 0; i < 200; i++) {
  const body = Readable.from([Buffer.from(`{"id": ${i*2}, "a": "x"}\n{"id": ${i*2+1}, "a": "y"}\n`)]);
  await sql.begin((tx) => loadFile(tx, { target: { schema: 'raw', table: 'dbg' }, sourceUri: `s3://b/${i}`, runId: 'r', format: 'jsonl', csv: { header: true, delimiter: ',', quote: '"', null_string: '' }, gzip: false, body }));
}
console.log('per file ms', (performance.now() - t0) / 200);
await close(); await pg.stop();
