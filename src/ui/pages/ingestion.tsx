import type { FC } from 'hono/jsx';
import type { ApiErrorBody, Ingestion, Page, ProcessedFile, Run, Schedule, SchemaHistory } from '../api.js';
import { RunsChart } from '../chart.js';
import { fmtBytes, fmtDuration, fmtInt, fmtSeconds } from '../format.js';
import { Badge, Csrf, Empty, ErrorCallout, Layout, Time, ui } from '../layout.js';

/** The file statuses the filter offers (the API's `processed-files?status=`). */
export const fileFilters = ['DISCOVERED', 'PROCESSING', 'SUCCESS', 'FAILED', 'SKIPPED'] as const;
export type FileFilter = (typeof fileFilters)[number];

export interface IngestionPageData {
  ingestion: Ingestion;
  runs: Page<Run>;
  files: Page<ProcessedFile>;
  schema: SchemaHistory;
  schedule: Schedule | null;
  fileStatus: FileFilter | undefined;
}

export const ScheduleSummary: FC<{ schedule: Schedule }> = ({ schedule }) => (
  <span>
    {schedule.cron ? <code>{schedule.cron}</code> : null}
    {schedule.interval_seconds ? `every ${fmtSeconds(schedule.interval_seconds)}` : null}
    {schedule.timezone && schedule.cron ? <span class="muted small"> {schedule.timezone}</span> : null}
    {schedule.operation && schedule.operation !== 'run' ? (
      <span class="small">
        {' '}
        · {schedule.operation.replaceAll('_', ' ')}
        {schedule.strategy ? ` (${schedule.strategy})` : ''}
      </span>
    ) : null}
    {schedule.paused ? (
      <>
        {' '}
        <Badge status="paused" />
      </>
    ) : null}
  </span>
);

const filesUrl = (id: string, status?: string, cursor?: string) => {
  const q = new URLSearchParams();
  if (status) q.set('status', status);
  if (cursor) q.set('cursor', cursor);
  const qs = q.toString();
  return `${ui(`/ingestions/${encodeURIComponent(id)}`)}${qs ? `?${qs}` : ''}#files`;
};

const Actions: FC<{ ingestion: Ingestion; csrf: string }> = ({ ingestion, csrf }) => {
  const base = ui(`/ingestions/${encodeURIComponent(ingestion.id)}`);
  return (
    <section class="card" id="actions">
      <h2>Actions</h2>
      <div class="row">
        <form method="post" action={`${base}/run`} class="inline">
          <Csrf token={csrf} />
          <button type="submit" class="primary">
            Run now
          </button>
        </form>
        <form method="post" action={`${base}/refresh/preview`} class="inline" id="full-refresh-form">
          <Csrf token={csrf} />
          <input type="hidden" name="mode" value="full_refresh" />
          <label>
            strategy{' '}
            <select name="strategy">
              <option value="drop">drop</option>
              <option value="swap">swap (no downtime)</option>
            </select>
          </label>
          <button type="submit">Full refresh…</button>
        </form>
        <form method="post" action={`${base}/refresh/preview`} class="inline">
          <Csrf token={csrf} />
          <input type="hidden" name="mode" value="fresh_start" />
          <button type="submit">Fresh start…</button>
        </form>
      </div>
      <p class="muted small">
        Refreshes show a preview first (what would be dropped and reloaded, and what it costs); nothing
        changes until you confirm it there.
      </p>
    </section>
  );
};

const RunsTable: FC<{ runs: Run[] }> = ({ runs }) => (
  <table id="runs">
    <thead>
      <tr>
        <th>Run</th>
        <th>Status</th>
        <th>Trigger</th>
        <th>Started</th>
        <th class="num">Rows</th>
        <th class="num">Files loaded</th>
        <th class="num">Failed</th>
        <th class="num">Unchanged</th>
        <th class="num">Read</th>
        <th class="num">Duration</th>
      </tr>
    </thead>
    <tbody>
      {runs.map((r) => (
        <tr data-run-id={r.id}>
          <td>
            <a href={ui(`/runs/${encodeURIComponent(r.id)}`)} class="mono">
              {r.id}
            </a>
          </td>
          <td>
            <Badge status={r.status} />
          </td>
          <td>{r.trigger}</td>
          <td>
            <Time iso={r.started_at} />
          </td>
          <td class="num">{fmtInt(r.records_written)}</td>
          <td class="num">{fmtInt(r.files_processed)}</td>
          <td class="num">{fmtInt(r.files_failed)}</td>
          <td class="num">{fmtInt(r.files_skipped)}</td>
          <td class="num">{fmtBytes(r.bytes_read)}</td>
          <td class="num">{fmtDuration(r.duration_ms)}</td>
        </tr>
      ))}
    </tbody>
  </table>
);

const FileError: FC<{ file: ProcessedFile }> = ({ file }) => {
  if (!file.error_message) return <span class="muted">—</span>;
  const firstLine = file.error_message.split('\n')[0] ?? '';
  const short = firstLine.length > 80 ? `${firstLine.slice(0, 80)}…` : firstLine;
  return (
    <details class="error">
      <summary>
        {file.error_type ? <strong>{file.error_type}: </strong> : null}
        {short}
      </summary>
      {/* In full: the summary is cut, the reason is often at the end. */}
      <pre>{file.error_message}</pre>
    </details>
  );
};

const FilesSection: FC<{ data: IngestionPageData }> = ({ data }) => {
  const { ingestion, files, fileStatus } = data;
  return (
    <section class="card" id="files">
      <div class="row spread">
        <h2>Files</h2>
        <nav class="filters row" aria-label="Filter files by status">
          <a href={filesUrl(ingestion.id)} class={fileStatus ? undefined : 'active'}>
            all
          </a>
          {fileFilters.map((s) => (
            <a href={filesUrl(ingestion.id, s)} class={fileStatus === s ? 'active' : undefined}>
              {s}
            </a>
          ))}
        </nav>
      </div>
      {files.items.length === 0 ? (
        <Empty>{fileStatus ? `No ${fileStatus} files.` : 'No files seen yet: start a run.'}</Empty>
      ) : (
        <table id="files-table">
          <thead>
            <tr>
              <th>File</th>
              <th>Status</th>
              <th class="num">Rows</th>
              <th class="num">Size</th>
              <th>Processed</th>
              <th class="num">Schema</th>
              <th class="num">Retries</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            {files.items.map((f) => (
              <tr data-file={f.file_path} data-status={f.status}>
                <td class="mono">{f.file_path}</td>
                <td>
                  <Badge status={f.status} />
                </td>
                <td class="num">{fmtInt(f.records_ingested)}</td>
                <td class="num">{fmtBytes(f.file_size_bytes)}</td>
                <td>
                  <Time iso={f.processed_at} />
                  {f.run_id ? (
                    <div class="small">
                      <a href={ui(`/runs/${encodeURIComponent(f.run_id)}`)}>{f.run_id}</a>
                    </div>
                  ) : null}
                </td>
                <td class="num">{f.schema_version === null ? '—' : `v${f.schema_version}`}</td>
                <td class="num">{fmtInt(f.retry_count)}</td>
                <td>
                  <FileError file={f} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {files.next_cursor ? (
        <p>
          <a href={filesUrl(ingestion.id, fileStatus, files.next_cursor)}>Next files →</a>
        </p>
      ) : null}
    </section>
  );
};

const SchemaSection: FC<{ schema: SchemaHistory }> = ({ schema }) => (
  <section class="card" id="schema">
    <h2>Schema history</h2>
    <p class="muted small">
      Mode <code>{schema.schema_mode}</code>
      {schema.declared_columns
        ? `, ${schema.declared_columns.length} declared columns`
        : ', inferred columns'}
      {schema.current_version !== null ? `; current version v${schema.current_version}` : ''}
    </p>
    {schema.versions.length === 0 ? (
      <Empty>No file has been loaded yet.</Empty>
    ) : (
      <table>
        <thead>
          <tr>
            <th>Version</th>
            <th>Columns added</th>
            <th>First file</th>
            <th class="num">Files</th>
            <th>Since</th>
          </tr>
        </thead>
        <tbody>
          {[...schema.versions].reverse().map((v) => (
            <tr data-schema-version={String(v.version)}>
              <td>v{v.version}</td>
              <td>
                {v.added.length === 0 ? (
                  <span class="muted">types changed</span>
                ) : (
                  v.added.map((col, i) => (
                    <>
                      {i > 0 ? ', ' : ''}
                      <code>{col.name}</code> <span class="muted small">{col.type}</span>
                    </>
                  ))
                )}
                <details>
                  <summary class="small muted">all {v.columns.length} columns</summary>
                  <span class="small">{v.columns.map((col) => `${col.name} ${col.type}`).join(', ')}</span>
                </details>
              </td>
              <td class="mono small">{v.first_file}</td>
              <td class="num">{fmtInt(v.files)}</td>
              <td>
                <Time iso={v.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </section>
);

export const IngestionPage: FC<{
  csrf: string;
  data: IngestionPageData;
  error?: { error: ApiErrorBody; status: number };
}> = ({ csrf, data, error }) => {
  const { ingestion, runs, schedule } = data;
  const source = ingestion.source;
  const where = [source.bucket, source.prefix].filter((v) => typeof v === 'string' && v !== '').join('/');
  return (
    <Layout title={ingestion.name} csrf={csrf} section="ingestions">
      <p class="small">
        <a href={ui('/ingestions')}>← Ingestions</a>
      </p>
      <div class="row spread">
        <div>
          <h1>
            {ingestion.name} <Badge status={ingestion.status} />
          </h1>
          <p class="subtitle">
            <code>{String(source.format ?? '')}</code>
            {where ? (
              <>
                {' '}
                files from <code>{where}</code>
              </>
            ) : null}
            {typeof source.pattern === 'string' ? (
              <>
                {' '}
                matching <code>{source.pattern}</code>
              </>
            ) : null}{' '}
            into <code>{ingestion.destination}</code>
          </p>
        </div>
        <div class="small muted" id="schedule">
          {schedule ? (
            <>
              Schedule: <ScheduleSummary schedule={schedule} />
              {schedule.next_action_times[0] ? (
                <div>
                  next tick <Time iso={schedule.next_action_times[0]} />
                </div>
              ) : null}
            </>
          ) : (
            'No schedule'
          )}
        </div>
      </div>
      {error ? <ErrorCallout error={error.error} status={error.status} /> : null}
      <Actions ingestion={ingestion} csrf={csrf} />
      <section class="card" id="runs-section">
        <h2>Runs</h2>
        {runs.items.length === 0 ? (
          <Empty>No runs yet.</Empty>
        ) : (
          <>
            <RunsChart runs={runs.items} />
            <RunsTable runs={runs.items} />
            {runs.next_cursor ? (
              <p>
                <a
                  href={`${ui(`/ingestions/${encodeURIComponent(ingestion.id)}`)}?runs_cursor=${encodeURIComponent(runs.next_cursor)}#runs-section`}
                >
                  Older runs →
                </a>
              </p>
            ) : null}
          </>
        )}
      </section>
      <FilesSection data={data} />
      <SchemaSection schema={data.schema} />
    </Layout>
  );
};
