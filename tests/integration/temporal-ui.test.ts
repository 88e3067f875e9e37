import type { WorkflowExecutionInfo } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflowIds } from '../../src/temporal/ids.js';
import {
  ensureSearchAttributes,
  searchAttributeKeys,
  searchAttributeNames,
} from '../../src/temporal/search-attributes.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

/**
 * The Temporal UI tells one ingestion's runs and operations apart (issue 13, item 5): every
 * workflow carries search attributes and a summary, activities name their work. Read back through
 * the Temporal client, as the UI reads them.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const attrs = (info: { typedSearchAttributes: { get(key: unknown): unknown } }) => ({
  ingestion: info.typedSearchAttributes.get(searchAttributeKeys.ingestionId),
  tenant: info.typedSearchAttributes.get(searchAttributeKeys.tenant),
  operation: info.typedSearchAttributes.get(searchAttributeKeys.operation),
  run: info.typedSearchAttributes.get(searchAttributeKeys.runId),
  trigger: info.typedSearchAttributes.get(searchAttributeKeys.trigger),
});

/** Visibility is updated after the fact: list until the query sees `count` workflows. */
async function listUntil(query: string, count: number): Promise<WorkflowExecutionInfo[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found: WorkflowExecutionInfo[] = [];
    for await (const wf of h.client.workflow.list({ query })) found.push(wf);
    if (found.length >= count || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('workflows as the Temporal UI shows them', () => {
  it('labels a manual run, a swap refresh, its run and its deletion with search attributes and summaries', async () => {
    const files = Object.fromEntries([0, 1, 2].map((i) => [`f${i}.jsonl`, jsonLines(i * 10, 10)]));
    const { id, table } = await h.createIngestion(files, {}, 'ui');

    const first = await h.runAndWait(id);
    // The ingestion's workflow id is shared: right after the run, its latest execution is the run.
    const runDesc = await h.client.workflow.getHandle(workflowIds.ingestion(id)).describe();
    expect(attrs(runDesc)).toEqual({
      ingestion: id,
      tenant: h.tenantId,
      operation: 'run',
      run: first.id,
      trigger: 'manual',
    });
    expect(await runDesc.staticSummary()).toBe(`run ${first.id} into raw.${table} (manual)`);

    // The loading activities say what they load.
    const history = await h.client.workflow
      .getHandle(workflowIds.ingestion(id), runDesc.runId)
      .fetchHistory();
    const summaries = (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => {
        const payload = e.userMetadata?.summary;
        return payload ? defaultPayloadConverter.fromPayload<string>(payload) : undefined;
      });
    expect(summaries).toContain('list the source for new and changed files (live table)');
    expect(summaries).toContainEqual(
      expect.stringMatching(/^run_\w+\/lane-0: load a batch of up to \d+ files$/),
    );

    const refresh = await h.api<{ operation_id: string; run_id: string }>(
      'POST',
      `/api/v1/ingestions/${id}/full-refresh`,
      { confirm: true, strategy: 'swap', grace_period_seconds: 1 },
    );
    expect(refresh.status).toBe(202);
    await h.waitForIngestionIdle(id);

    const opDesc = await h.client.workflow.getHandle(workflowIds.ingestion(id)).describe();
    expect(attrs(opDesc)).toMatchObject({ ingestion: id, tenant: h.tenantId, operation: 'full_refresh' });
    expect(await opDesc.staticSummary()).toBe(`full refresh (swap) of raw.${table} — 3 files`);

    const childDesc = await h.client.workflow
      .getHandle(workflowIds.ingestionRun(id, refresh.body.run_id))
      .describe();
    expect(attrs(childDesc)).toEqual({
      ingestion: id,
      tenant: h.tenantId,
      operation: 'run',
      run: refresh.body.run_id,
      trigger: 'full_refresh',
    });
    expect(await childDesc.staticSummary()).toContain(
      `of full refresh ${refresh.body.operation_id} into shadow table`,
    );

    // One ingestion's workflows, by query, as the README's UI query lists them.
    const all = await listUntil(`AutoloaderIngestionId = "${id}"`, 4);
    const byOperation = all.map((wf) => attrs(wf).operation).sort();
    expect(byOperation).toEqual(['full_refresh', 'pending_deletion', 'run', 'run']);
  });

  it('finds one ingestion’s failed runs with the query the README gives', async () => {
    const { id, bucket } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 5) }, {}, 'uifail');
    const good = await h.runAndWait(id);
    expect(good.status).toBe('SUCCESS');
    // The source's bucket removed: the next run fails as a whole.
    await h.api('PATCH', `/api/v1/ingestions/${id}`, { source: { bucket: `${bucket}-gone` } });
    const started = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${id}/run`);
    await h.waitForIngestionIdle(id);
    const failed = await h.api<RunBody>('GET', `/api/v1/runs/${started.body.id}`);
    expect(failed.body.status).toBe('FAILED');

    const query = `AutoloaderIngestionId = "${id}" AND AutoloaderOperation = "run" AND ExecutionStatus = "Failed"`;
    const found = await listUntil(query, 1);
    expect(found.map((wf) => attrs(wf).run)).toEqual([started.body.id]);
  });

  it('registers the search attributes on a namespace that lacks them, once (a cluster not started by us)', async () => {
    const namespace = `sa-${Date.now().toString(36)}`;
    await h.client.workflowService.registerNamespace({
      namespace,
      // protobufjs takes a plain number for an int64 field.
      workflowExecutionRetentionPeriod: { seconds: 86_400 as never },
    });
    // A new namespace reaches the operator service's cache shortly after it is registered.
    const deadline = Date.now() + 30_000;
    let added: string[] | undefined;
    while (added === undefined) {
      try {
        added = await ensureSearchAttributes(h.client.connection, namespace);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(added.sort()).toEqual([...searchAttributeNames].sort());
    expect(await ensureSearchAttributes(h.client.connection, namespace)).toEqual([]);
    const listed = await h.client.connection.operatorService.listSearchAttributes({ namespace });
    for (const name of searchAttributeNames)
      expect(Object.keys(listed.customAttributes ?? {})).toContain(name);
  });
});
