import type { FC } from 'hono/jsx';
import type { Ingestion, Run } from '../api.js';
import { fmtBytes, fmtDuration, fmtInt } from '../format.js';
import { Badge, Layout, Time, ui } from '../layout.js';

export const POLL_MS = 1500;

/**
 * The part of the run page that changes while it runs. Rendered whole for the page and alone for
 * the poll (`/runs/:id/live`); once the run has ended it drops `data-poll` and the polling stops.
 */
export const RunLive: FC<{ run: Run }> = ({ run }) => {
  // A paused run has not ended: its page keeps following it.
  const running = run.status === 'RUNNING' || run.status === 'PAUSED';
  const p = run.progress;
  return (
    <section
      class="card"
      id="run-live"
      data-status={run.status}
      data-poll={running ? ui(`/runs/${encodeURIComponent(run.id)}/live`) : undefined}
      data-poll-ms={running ? String(POLL_MS) : undefined}
    >
      <div class="row spread">
        <h2>
          Status <Badge status={run.status} />
        </h2>
        {running ? (
          <span class="live-note" data-live-note>
            Live: updates every {POLL_MS / 1000} s
          </span>
        ) : null}
      </div>
      {running && p ? (
        <div id="progress">
          <progress max={String(Math.max(1, p.files_total))} value={String(p.files_done)} />
          <p class="small">
            {p.files_total === 0 ? 'Discovering files… ' : ''}
            {fmtInt(p.files_done)} of {fmtInt(p.files_total)} queued files done
            {p.files_failed > 0 ? `, ${fmtInt(p.files_failed)} failed` : ''} · {fmtInt(p.records_written)}{' '}
            rows so far
          </p>
        </div>
      ) : null}
      <dl class="stats">
        <div>
          <dt>Rows written</dt>
          <dd id="records-written" data-stat="records_written">
            {fmtInt(running && p ? p.records_written : run.records_written)}
          </dd>
        </div>
        <div>
          <dt>Files discovered</dt>
          <dd data-stat="files_discovered">{fmtInt(run.files_discovered)}</dd>
        </div>
        <div>
          <dt>Files loaded</dt>
          <dd data-stat="files_processed">{fmtInt(run.files_processed)}</dd>
        </div>
        <div>
          <dt>Files failed</dt>
          <dd data-stat="files_failed">{fmtInt(run.files_failed)}</dd>
        </div>
        <div>
          <dt>Unchanged</dt>
          <dd data-stat="files_skipped">{fmtInt(run.files_skipped)}</dd>
        </div>
        <div>
          <dt>Read</dt>
          <dd data-stat="bytes_read">{fmtBytes(run.bytes_read)}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd data-stat="duration_ms">{fmtDuration(run.duration_ms)}</dd>
        </div>
      </dl>
      <p class="small">
        Started <Time iso={run.started_at} />
        {run.finished_at ? (
          <>
            , finished <Time iso={run.finished_at} />
          </>
        ) : null}{' '}
        · trigger <code>{run.trigger}</code>
      </p>
      {run.error ? (
        <div class="callout callout-error">
          <strong>Run error</strong>
          <pre>{run.error}</pre>
        </div>
      ) : null}
      {run.files_failed > 0 && !running ? (
        <p>
          <a href={`${ui(`/ingestions/${encodeURIComponent(run.ingestion_id)}`)}?status=FAILED#files`}>
            See the failed files and their errors →
          </a>
        </p>
      ) : null}
    </section>
  );
};

export function temporalWorkflowUrl(base: string, namespace: string, workflowId: string): string {
  // A workflow id holds slashes (`ingestion/<id>`): unencoded, the UI would read a run id from it.
  return `${base.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

export const RunPage: FC<{
  csrf: string;
  run: Run;
  ingestion: Ingestion;
  temporalUrl: string | undefined;
}> = ({ csrf, run, ingestion, temporalUrl }) => (
  <Layout
    title={`Run ${run.id}`}
    csrf={csrf}
    section="ingestions"
    refreshSeconds={run.status === 'RUNNING' || run.status === 'PAUSED' ? 5 : undefined}
  >
    <p class="small">
      <a href={ui('/ingestions')}>Ingestions</a> /{' '}
      <a href={ui(`/ingestions/${encodeURIComponent(ingestion.id)}`)}>{ingestion.name}</a>
    </p>
    <h1>
      Run <span class="mono">{run.id}</span>
    </h1>
    <p class="subtitle">
      Into <code>{ingestion.destination}</code> · workflow <code>{run.workflow_id}</code>
      {temporalUrl ? (
        <>
          {' '}
          ·{' '}
          <a href={temporalUrl} id="temporal-link" rel="noopener" target="_blank">
            open in the Temporal UI ↗
          </a>
        </>
      ) : null}
    </p>
    <RunLive run={run} />
  </Layout>
);
