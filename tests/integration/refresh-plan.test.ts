import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken } from '../../src/auth/tokens.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * A dry run returns a plan (issue 11): executing with its `plan_id` runs what was previewed, or is
 * refused with 409 PLAN_STALE naming what changed. Real Temporal, Postgres and MinIO.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

type DryRun = {
  status: string;
  plan_id: string;
  plan_expires_at: string;
  next_steps: { to_proceed: string };
};
type Problem = {
  error_code: string;
  field?: string;
  detail: string;
  plan_id?: string;
  changes?: { what: string; planned: unknown; now: unknown }[];
};

async function loaded(files: number) {
  const contents: Record<string, string> = {};
  for (let i = 0; i < files; i++) contents[`f${i}.jsonl`] = jsonLines(i * 10, 10);
  const ing = await h.createIngestion(contents, {}, 'plan');
  expect(await h.runAndWait(ing.id)).toMatchObject({ status: 'SUCCESS', files_processed: files });
  return ing;
}

const fullRefresh = (id: string, body: Record<string, unknown>, api = h.api) =>
  api<DryRun & Problem>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
    confirm: true,
    strategy: 'swap',
    ...body,
  });

const operationsOf = async (id: string) =>
  (await h.sql`select 1 from autoloader.operations where ingestion_id = ${id}`).length;

describe('a dry run’s plan', () => {
  it('runs what it previewed when nothing changed', async () => {
    const ing = await loaded(2);
    const dry = await fullRefresh(ing.id, { dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.body.plan_id).toMatch(/^plan_/);
    expect(new Date(dry.body.plan_expires_at).getTime()).toBeGreaterThan(Date.now());
    expect(dry.body.next_steps.to_proceed).toContain(dry.body.plan_id);

    const run = await fullRefresh(ing.id, { plan_id: dry.body.plan_id });
    expect(run.status).toBe(202);
    await h.waitForIngestionIdle(ing.id);
    const [c] = await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${ing.table}`);
    expect(c!.n).toBe(20);
  });

  it('is refused after a file is added, naming what changed, and nothing starts', async () => {
    const ing = await loaded(2);
    const dry = await fullRefresh(ing.id, { dry_run: true });
    await h.putObject(ing.bucket, 'late.jsonl', jsonLines(1000, 5));
    const before = await operationsOf(ing.id);

    const refused = await fullRefresh(ing.id, { plan_id: dry.body.plan_id });
    expect(refused.status).toBe(409);
    expect(refused.body.error_code).toBe('PLAN_STALE');
    expect(refused.body.plan_id).toBe(dry.body.plan_id);
    expect(refused.body.changes).toContainEqual({ what: 'source.files', planned: 2, now: 3 });
    expect(await operationsOf(ing.id)).toBe(before);

    // Without the plan it runs whatever the source holds now.
    expect((await fullRefresh(ing.id, {})).status).toBe(202);
    await h.waitForIngestionIdle(ing.id);
  });

  it('is refused when the table changed, or with other options than it was made for', async () => {
    const ing = await loaded(1);
    const dry = await fullRefresh(ing.id, { dry_run: true });
    const asDrop = await fullRefresh(ing.id, { plan_id: dry.body.plan_id, strategy: 'drop' });
    expect(asDrop.status).toBe(409);
    expect(asDrop.body.changes).toEqual([{ what: 'strategy', planned: 'swap', now: 'drop' }]);

    await h.sql.unsafe(
      `insert into raw.${ing.table} (id, _source_file, _run_id) values (-1, 'stray', 'stray')`,
    );
    const rows = await fullRefresh(ing.id, { plan_id: dry.body.plan_id });
    expect(rows.status).toBe(409);
    expect(rows.body.changes).toEqual([{ what: 'table.row_count', planned: 10, now: 11 }]);
  });

  it('is refused once expired; unknown and other ingestions’ plans are invalid', async () => {
    const ing = await loaded(1);
    const other = await loaded(1);
    const dry = await fullRefresh(ing.id, { dry_run: true });

    const foreign = await fullRefresh(other.id, { plan_id: dry.body.plan_id });
    expect(foreign.status).toBe(400);
    expect(foreign.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'plan_id' });
    const unknown = await fullRefresh(ing.id, { plan_id: 'plan_nope' });
    expect(unknown.status).toBe(400);

    await h.sql`
      update autoloader.audit_events
      set impact = jsonb_set(impact, '{plan,expires_at}', to_jsonb((now() - interval '1 second')::text))
      where impact->'plan'->>'id' = ${dry.body.plan_id}`;
    const expired = await fullRefresh(ing.id, { plan_id: dry.body.plan_id });
    expect(expired.status).toBe(409);
    expect(expired.body.error_code).toBe('PLAN_STALE');
    expect(expired.body.detail).toContain('expired');
  });

  it('is the proof of a dry run the large-operation rule asks for, whoever executes it', async () => {
    const ing = await loaded(1);
    const app = h.makeApp({ refresh: { largeOperationUsd: 1, costPerGbUsd: 1e9 } });
    const previewer = inProcessClient(app, h.token);
    const { token } = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'executor',
      subject: 'exec@example.com',
    });
    const executor = inProcessClient(app, token);
    const dry = await fullRefresh(ing.id, { dry_run: true }, previewer);
    expect(dry.status).toBe(200);
    // The executor made no dry run of their own: without the plan the rule refuses them.
    const unseen = await fullRefresh(ing.id, {}, executor);
    expect(unseen.status).toBe(400);
    expect(unseen.body.error_code).toBe('DRY_RUN_REQUIRED');
    expect((await fullRefresh(ing.id, { plan_id: dry.body.plan_id }, executor)).status).toBe(202);
    await h.waitForIngestionIdle(ing.id);
  });
});
