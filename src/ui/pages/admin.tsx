import type { FC } from 'hono/jsx';
import type { AuditEvent, PendingDeletion } from '../api.js';
import { fmtInt, humanize } from '../format.js';
import { Badge, Empty, Layout, Time, ui } from '../layout.js';

const IngestionLink: FC<{ id: string | null }> = ({ id }) =>
  id ? (
    <a href={ui(`/ingestions/${encodeURIComponent(id)}`)} class="mono small">
      {id}
    </a>
  ) : (
    <span class="muted">—</span>
  );

const OperationLink: FC<{ id: string | null }> = ({ id }) =>
  id ? (
    <a href={ui(`/operations/${encodeURIComponent(id)}`)} class="mono small">
      {id}
    </a>
  ) : (
    <span class="muted">—</span>
  );

export const DeletionsPage: FC<{ csrf: string; items: PendingDeletion[]; includeDone: boolean }> = ({
  csrf,
  items,
  includeDone,
}) => (
  <Layout title="Pending deletions" csrf={csrf} section="deletions">
    <h1>Pending deletions</h1>
    <p class="subtitle">
      Table versions a swap refresh replaced, kept for their grace period, then dropped by a durable timer.{' '}
      {includeDone ? (
        <a href={ui('/pending-deletions')}>Only pending</a>
      ) : (
        <a href={ui('/pending-deletions?include_done=true')}>Include done</a>
      )}
    </p>
    <section class="card">
      {items.length === 0 ? (
        <Empty>Nothing waiting to be deleted.</Empty>
      ) : (
        <table id="deletions">
          <thead>
            <tr>
              <th>Table</th>
              <th>Ingestion</th>
              <th>Operation</th>
              <th>Due</th>
              <th>State</th>
            </tr>
          </thead>
          <tbody>
            {items.map((d) => (
              <tr data-deletion-id={d.id}>
                <td class="mono">{d.table_name}</td>
                <td>
                  <IngestionLink id={d.ingestion_id} />
                </td>
                <td>
                  <OperationLink id={d.operation_id} />
                </td>
                <td>
                  <Time iso={d.due_at} />
                </td>
                <td>
                  {d.executed_at ? (
                    <>
                      <Badge status="success" /> dropped <Time iso={d.executed_at} />
                    </>
                  ) : (
                    <Badge status="pending" />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  </Layout>
);

export const AuditPage: FC<{ csrf: string; items: AuditEvent[]; ingestionId: string | undefined }> = ({
  csrf,
  items,
  ingestionId,
}) => (
  <Layout title="Audit log" csrf={csrf} section="audit">
    <h1>Audit log</h1>
    <p class="subtitle">
      Who requested which destructive operation (previews included), with its estimated impact and result.
      {ingestionId ? (
        <>
          {' '}
          Showing <code>{ingestionId}</code> only: <a href={ui('/audit')}>show all</a>.
        </>
      ) : null}
    </p>
    <section class="card">
      {items.length === 0 ? (
        <Empty>No destructive operation yet.</Empty>
      ) : (
        <table id="audit">
          <thead>
            <tr>
              <th>When</th>
              <th>Who</th>
              <th>Action</th>
              <th>Ingestion</th>
              <th>Operation</th>
              <th class="num">Files</th>
              <th class="num">Est. cost</th>
              <th>Result</th>
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr data-action={e.action} data-result={e.result}>
                <td>
                  <Time iso={e.created_at} />
                </td>
                <td>{e.subject}</td>
                <td>
                  {humanize(e.action)}
                  {e.dry_run ? <span class="muted small"> (preview)</span> : null}
                </td>
                <td>
                  {e.ingestion_id ? (
                    <a
                      href={ui(`/audit?ingestion_id=${encodeURIComponent(e.ingestion_id)}`)}
                      class="mono small"
                    >
                      {e.ingestion_id}
                    </a>
                  ) : (
                    <span class="muted">—</span>
                  )}
                </td>
                <td>
                  <OperationLink id={e.operation_id} />
                </td>
                <td class="num">{fmtInt(e.impact?.files_to_process)}</td>
                <td class="num">
                  {e.impact?.estimated_cost_usd == null ? '—' : `$${e.impact.estimated_cost_usd.toFixed(2)}`}
                </td>
                <td>
                  <Badge status={e.result} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  </Layout>
);
