import type { FC } from 'hono/jsx';
import type { ApiErrorBody } from '../api.js';
import { ErrorCallout, Layout, ui } from '../layout.js';

export const LoginPage: FC<{ nonce: string; message?: string; failed?: boolean }> = ({
  nonce,
  message,
  failed,
}) => (
  <Layout title="Sign in">
    <section class="card login">
      <h1>Sign in</h1>
      <p class="muted">
        Paste an API token. The console calls the API with it, so you see and may do exactly what the token
        allows. <code>npm start</code> prints a development token.
      </p>
      {message ? (
        <div class={`callout ${failed ? 'callout-error' : 'callout-info'}`} role="alert" id="login-message">
          {message}
        </div>
      ) : null}
      <form method="post" action={ui('/login')}>
        <input type="hidden" name="_csrf" value={nonce} />
        <label for="token">API token</label>
        <input
          type="password"
          id="token"
          name="token"
          autocomplete="off"
          spellcheck={false}
          required
          placeholder="al_…"
        />
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
    </section>
  </Layout>
);

export const ErrorPage: FC<{ csrf?: string; title: string; error: ApiErrorBody; status: number }> = ({
  csrf,
  title,
  error,
  status,
}) => (
  <Layout title={title} csrf={csrf}>
    <h1>{title}</h1>
    <ErrorCallout error={error} status={status} />
    <p>
      <a href={ui('/ingestions')}>← Back to the ingestions</a>
    </p>
  </Layout>
);
