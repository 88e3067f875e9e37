import type { FC } from 'hono/jsx';
import type { DryRun, Ingestion, RefreshMode, RefreshStrategy } from '../api.js';
import { Csrf, Layout, ui } from '../layout.js';
import { Impact, modeTitles, StepsTable } from './operation.js';

const consequences: Record<RefreshMode, Record<RefreshStrategy, string>> = {
  full_refresh: {
    drop: 'The table is dropped, the file history cleared and every file loaded again. Readers find no table until the reload has created it.',
    swap: 'Every file is loaded into a new table beside the live one; readers keep the old table until one transaction swaps the new one in. The old version is deleted after the grace period.',
  },
  fresh_start: {
    drop: 'The table is dropped and recreated; the file history is kept, so only files not yet processed are loaded.',
    swap: '',
  },
};

/**
 * The dry run of a refresh, and the only place its confirm button lives: what the API says it
 * would do (`would_perform`), what it costs (`impact`), and its warnings, before anything changes.
 */
export const PreviewPage: FC<{
  csrf: string;
  ingestion: Ingestion;
  mode: RefreshMode;
  strategy: RefreshStrategy;
  preview: DryRun;
}> = ({ csrf, ingestion, mode, strategy, preview }) => {
  const title = `${modeTitles[mode]}${mode === 'full_refresh' ? ` (${strategy})` : ''}`;
  const base = ui(`/ingestions/${encodeURIComponent(ingestion.id)}`);
  return (
    <Layout title={`Preview: ${title}`} csrf={csrf} section="ingestions">
      <p class="small">
        <a href={ui('/ingestions')}>Ingestions</a> / <a href={base}>{ingestion.name}</a>
      </p>
      <h1>
        Preview: {title} of <code>{ingestion.destination}</code>
      </h1>
      <div class="callout callout-info" id="preview-status">
        <strong>Nothing has changed yet.</strong>
        <p>{consequences[mode][strategy]}</p>
      </div>
      <section class="card">
        <h2>What it would do</h2>
        <StepsTable steps={preview.would_perform} id="would-perform" />
      </section>
      <section class="card">
        <h2>Impact</h2>
        <Impact impact={preview.impact} />
        {preview.warnings.length > 0 ? (
          <div class="callout callout-warn" id="warnings">
            <strong>Warnings</strong>
            <ul>
              {preview.warnings.map((w) => (
                <li>{w}</li>
              ))}
            </ul>
          </div>
        ) : null}
        {preview.notes.length > 0 ? (
          <ul class="small" id="notes">
            {preview.notes.map((n) => (
              <li>{n}</li>
            ))}
          </ul>
        ) : null}
      </section>
      <section class="card">
        <form method="post" action={`${base}/refresh/confirm`} class="row">
          <Csrf token={csrf} />
          <input type="hidden" name="mode" value={mode} />
          <input type="hidden" name="strategy" value={strategy} />
          <button type="submit" class="danger" id="confirm-refresh">
            Confirm {title.toLowerCase()}
          </button>
          <a href={base} class="button">
            Cancel
          </a>
        </form>
      </section>
    </Layout>
  );
};
