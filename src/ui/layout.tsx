import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import type { ApiErrorBody } from './api.js';
import { assetUrl } from './assets.js';
import { fmtTime, fmtValue, humanize } from './format.js';
import { basePath } from './session.js';

export const ui = (path: string) => `${basePath}${path}`;

const tones: Record<string, string> = {
  SUCCESS: 'ok',
  success: 'ok',
  awaiting_approval: 'warn',
  active: 'ok',
  PARTIAL_SUCCESS: 'warn',
  partial_failure: 'warn',
  paused: 'warn',
  PAUSED: 'warn',
  pending: 'info',
  FAILED: 'bad',
  failed: 'bad',
  CANCELLED: 'muted',
  SKIPPED: 'muted',
  skipped: 'muted',
  RUNNING: 'info',
  running: 'info',
  PROCESSING: 'info',
  DISCOVERED: 'info',
};

export const Badge: FC<{ status: string }> = ({ status }) => (
  <span class={`badge tone-${tones[status] ?? 'muted'}`} data-status={status}>
    {status}
  </span>
);

export const Time: FC<{ iso: string | null | undefined }> = ({ iso }) =>
  iso ? <time datetime={iso}>{fmtTime(iso)}</time> : <span class="muted">—</span>;

/** The hidden field every state-changing form carries (checked against the session cookie). */
export const Csrf: FC<{ token: string }> = ({ token }) => <input type="hidden" name="_csrf" value={token} />;

const headings: Record<string, string> = {
  INSUFFICIENT_PERMISSIONS: 'Your token is not allowed to do this',
  RUN_IN_PROGRESS: 'Another run or operation is in progress on this ingestion',
  RATE_LIMITED: 'Too many full refreshes this hour',
  DRY_RUN_REQUIRED: 'Preview this operation first',
  CONFIRMATION_REQUIRED: 'This operation needs an explicit confirmation',
  VALIDATION_ERROR: 'The request was not valid',
  SERVICE_UNAVAILABLE: 'A backing service (Postgres or Temporal) is unreachable',
  INGESTION_NOT_FOUND: 'No such ingestion',
  RUN_NOT_FOUND: 'No such run',
  OPERATION_NOT_FOUND: 'No such operation',
  NOT_FOUND: 'Not found',
  PARTIAL_FAILURE: 'The operation did not complete all its steps yet',
  INTERNAL_ERROR: 'Something went wrong on the server',
};

/** An API error as a sentence an operator can act on; never a stack trace. */
export const ErrorCallout: FC<{ error: ApiErrorBody; status?: number }> = ({ error, status }) => (
  <div class="callout callout-error" role="alert" data-error-code={error.error_code}>
    <strong>{headings[error.error_code] ?? 'The request failed'}</strong>
    <p>{error.detail}</p>
    {error.help ? <p class="muted">{error.help}</p> : null}
    {error.current_run_id ? (
      <p>
        Running now:{' '}
        <a href={ui(`/runs/${encodeURIComponent(error.current_run_id)}`)}>{error.current_run_id}</a>
      </p>
    ) : null}
    <p class="muted small">
      {error.error_code}
      {status ? ` · HTTP ${status}` : ''}
      {error.request_id ? ` · request ${error.request_id}` : ''}
    </p>
  </div>
);

/** An API detail object (`{table_name: …, row_count: …}`) as a compact definition list. */
export const Details: FC<{ details: Record<string, unknown> | null | undefined }> = ({ details }) => {
  const entries = Object.entries(details ?? {});
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <dl class="details">
      {entries.map(([k, v]) => (
        <>
          <dt>{humanize(k)}</dt>
          <dd>{fmtValue(v)}</dd>
        </>
      ))}
    </dl>
  );
};

export interface LayoutProps {
  title: string;
  /** Signed-in pages show the navigation and a sign-out form. */
  csrf?: string;
  /** The page's current section, highlighted in the navigation. */
  section?: 'ingestions' | 'deletions' | 'audit';
  /** Without script, a page with live content reloads itself at this interval. */
  refreshSeconds?: number;
}

export const Layout: FC<PropsWithChildren<LayoutProps>> = ({
  title,
  csrf,
  section,
  refreshSeconds,
  children,
}) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{`${title} · Autoloader`}</title>
      <link rel="stylesheet" href={assetUrl('console.css')} />
      <script src={assetUrl('console.js')} defer />
      {refreshSeconds ? (
        <noscript>
          <meta http-equiv="refresh" content={String(refreshSeconds)} />
        </noscript>
      ) : null}
    </head>
    <body>
      <header class="top">
        <a class="brand" href={ui('/ingestions')}>
          Autoloader
        </a>
        {csrf ? (
          <>
            <nav>
              <NavLink href={ui('/ingestions')} active={section === 'ingestions'}>
                Ingestions
              </NavLink>
              <NavLink href={ui('/pending-deletions')} active={section === 'deletions'}>
                Pending deletions
              </NavLink>
              <NavLink href={ui('/audit')} active={section === 'audit'}>
                Audit log
              </NavLink>
            </nav>
            <form method="post" action={ui('/logout')} class="signout">
              <Csrf token={csrf} />
              <button type="submit" class="link">
                Sign out
              </button>
            </form>
          </>
        ) : null}
      </header>
      <main>{children}</main>
    </body>
  </html>
);

const NavLink: FC<PropsWithChildren<{ href: string; active: boolean }>> = ({ href, active, children }) => (
  <a href={href} class={active ? 'active' : undefined} aria-current={active ? 'page' : undefined}>
    {children}
  </a>
);

export const Empty: FC<{ children: Child }> = ({ children }) => <p class="empty">{children}</p>;
