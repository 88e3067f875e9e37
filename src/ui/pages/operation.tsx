import type { FC } from 'hono/jsx';
import type { Ingestion, Operation, Step } from '../api.js';
import { fmtBytes, fmtInt, humanize } from '../format.js';
import { Badge, Details, Layout, Time, ui } from '../layout.js';
import { POLL_MS } from './run.js';

export const modeTitles: Record<string, string> = {
  full_refresh: 'Full refresh',
  fresh_start: 'Fresh start',
  drop_table: 'Drop table',
  reprocess: 'Reprocess',
};

export const StepsTable: FC<{ steps: Step[]; id: string }> = ({ steps, id }) => (
  <table id={id}>
    <thead>
      <tr>
        <th>Step</th>
        <th>Status</th>
        <th>Details</th>
      </tr>
    </thead>
    <tbody>
      {steps.map((s) => (
        <tr data-step={s.operation}>
          <td>{humanize(s.operation)}</td>
          <td>
            {s.status ? <Badge status={s.status} /> : <span class="muted">planned</span>}
            {s.timestamp ? (
              <div class="small">
                <Time iso={s.timestamp} />
              </div>
            ) : null}
          </td>
          <td>
            <Details details={s.details} />
            {s.error ? <pre class="small">{s.error}</pre> : null}
          </td>
        </tr>
      ))}
    </tbody>
  </table>
);

export const Impact: FC<{ impact: Record<string, number> | null | undefined }> = ({ impact }) =>
  impact ? (
    <dl class="stats" id="impact">
      <div>
        <dt>Files to process</dt>
        <dd data-impact="files_to_process">{fmtInt(impact.files_to_process)}</dd>
      </div>
      <div>
        <dt>Files skipped</dt>
        <dd>{fmtInt(impact.files_skipped)}</dd>
      </div>
      <div>
        <dt>Data</dt>
        <dd>
          {impact.estimated_data_size_bytes === undefined
            ? `${fmtInt(impact.estimated_data_size_gb)} GB`
            : fmtBytes(impact.estimated_data_size_bytes)}
        </dd>
      </div>
      <div>
        <dt>Estimated cost</dt>
        <dd>${(impact.estimated_cost_usd ?? 0).toFixed(2)}</dd>
      </div>
      <div>
        <dt>Estimated duration</dt>
        <dd>{fmtInt(impact.estimated_duration_minutes)} min</dd>
      </div>
    </dl>
  ) : null;

/** The changing part of an operation: polled while it runs, like a run's. */
export const OperationLive: FC<{ op: Operation }> = ({ op }) => {
  const running = op.status === 'running';
  return (
    <section
      class="card"
      id="operation-live"
      data-status={op.status}
      data-poll={running ? ui(`/operations/${encodeURIComponent(op.id)}/live`) : undefined}
      data-poll-ms={running ? String(POLL_MS) : undefined}
    >
      <div class="row spread">
        <h2>
          Status <Badge status={op.status} />
        </h2>
        {running ? (
          <span class="live-note" data-live-note>
            Live: updates every {POLL_MS / 1000} s
          </span>
        ) : null}
      </div>
      {op.run_id ? (
        <p>
          Run:{' '}
          <a href={ui(`/runs/${encodeURIComponent(op.run_id)}`)} id="operation-run" class="mono">
            {op.run_id}
          </a>
        </p>
      ) : null}
      {(op.operations ?? []).length > 0 ? (
        <StepsTable steps={op.operations ?? []} id="steps" />
      ) : (
        <p class="muted">No step completed yet.</p>
      )}
      {op.status === 'partial_failure' ? (
        <div class="callout callout-warn">
          <strong>A step has not completed yet.</strong>
          <p>
            It is being retried and the operation finishes by itself when the fault clears; nothing needs to
            be repeated.
          </p>
        </div>
      ) : null}
      {op.error ? (
        <div class="callout callout-error">
          <strong>Operation error</strong>
          <pre>{op.error}</pre>
        </div>
      ) : null}
      <p class="small muted">
        Requested by {op.requested_by} <Time iso={op.created_at} />
        {op.finished_at ? (
          <>
            , finished <Time iso={op.finished_at} />
          </>
        ) : null}
      </p>
    </section>
  );
};

export const OperationPage: FC<{ csrf: string; op: Operation; ingestion: Ingestion | null }> = ({
  csrf,
  op,
  ingestion,
}) => (
  <Layout
    title={`${modeTitles[op.type] ?? op.type} ${op.id}`}
    csrf={csrf}
    section="ingestions"
    refreshSeconds={op.status === 'running' ? 5 : undefined}
  >
    <p class="small">
      <a href={ui('/ingestions')}>Ingestions</a>
      {ingestion ? (
        <>
          {' '}
          / <a href={ui(`/ingestions/${encodeURIComponent(ingestion.id)}`)}>{ingestion.name}</a>
        </>
      ) : null}
    </p>
    <h1>
      {modeTitles[op.type] ?? humanize(op.type)} <span class="mono">{op.id}</span>
    </h1>
    <OperationLive op={op} />
    <section class="card">
      <h2>Impact (estimated at the request)</h2>
      <Impact impact={op.impact} />
      {(op.warnings ?? []).length > 0 ? (
        <div class="callout callout-warn">
          <ul>
            {(op.warnings ?? []).map((w) => (
              <li>{w}</li>
            ))}
          </ul>
        </div>
      ) : null}
      {(op.notes ?? []).length > 0 ? (
        <ul class="small">
          {(op.notes ?? []).map((n) => (
            <li>{n}</li>
          ))}
        </ul>
      ) : null}
    </section>
  </Layout>
);
