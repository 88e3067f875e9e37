import type { FC } from 'hono/jsx';
import type { Ingestion, Run, Schedule } from '../api.js';
import { fmtInt } from '../format.js';
import { Badge, Empty, Layout, Time, ui } from '../layout.js';
import { ScheduleSummary } from './ingestion.js';

export interface IngestionSummary {
  ingestion: Ingestion;
  lastRun: Run | null;
  schedule: Schedule | null;
}

export const IngestionsPage: FC<{ csrf: string; items: IngestionSummary[] }> = ({ csrf, items }) => (
  <Layout title="Ingestions" csrf={csrf} section="ingestions">
    <h1>Ingestions</h1>
    <p class="subtitle">Every ingestion of this token's tenant, with its last run and its schedule.</p>
    <section class="card">
      {items.length === 0 ? (
        <Empty>
          No ingestions yet. Create one with <code>POST /api/v1/ingestions</code>.
        </Empty>
      ) : (
        <table id="ingestions">
          <thead>
            <tr>
              <th>Name</th>
              <th>Destination</th>
              <th>Last run</th>
              <th class="num">Rows</th>
              <th>Files</th>
              <th>Schedule</th>
              <th>Next tick</th>
            </tr>
          </thead>
          <tbody>
            {items.map(({ ingestion, lastRun, schedule }) => (
              <tr data-ingestion-id={ingestion.id}>
                <td>
                  <a href={ui(`/ingestions/${encodeURIComponent(ingestion.id)}`)}>{ingestion.name}</a>
                  {ingestion.status === 'paused' ? (
                    <>
                      {' '}
                      <Badge status="paused" />
                    </>
                  ) : null}
                </td>
                <td>
                  <code>{ingestion.destination}</code>
                </td>
                <td>
                  {lastRun ? (
                    <a href={ui(`/runs/${encodeURIComponent(lastRun.id)}`)} class="last-run">
                      <Badge status={lastRun.status} /> <Time iso={lastRun.started_at} />
                    </a>
                  ) : (
                    <span class="muted">never run</span>
                  )}
                </td>
                <td class="num">{lastRun ? fmtInt(lastRun.records_written) : '—'}</td>
                <td>
                  {lastRun ? (
                    <span class="small">
                      {fmtInt(lastRun.files_processed)} loaded
                      {lastRun.files_failed > 0 ? `, ${fmtInt(lastRun.files_failed)} failed` : ''}
                      {lastRun.files_skipped > 0 ? `, ${fmtInt(lastRun.files_skipped)} unchanged` : ''}
                    </span>
                  ) : (
                    '—'
                  )}
                </td>
                <td class="schedule">
                  {schedule ? <ScheduleSummary schedule={schedule} /> : <span class="muted">none</span>}
                </td>
                <td class="next-tick">
                  {schedule?.next_action_times[0] ? (
                    <Time iso={schedule.next_action_times[0]} />
                  ) : (
                    <span class="muted">—</span>
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
