// Live updates for the console: an element with data-poll="<url>" is replaced, every
// data-poll-ms, by the HTML fragment the server renders at that url (the same component as the
// page, so there is one rendering and the server does all the escaping). A fragment that no
// longer carries data-poll is final and ends the polling. No library, no build step.
(() => {
  const MAX_BACKOFF_MS = 30000;

  function schedule(el, delay) {
    setTimeout(() => {
      void refresh(el, delay);
    }, delay);
  }

  async function refresh(el, lastDelay) {
    const url = el.getAttribute('data-poll');
    const every = Number(el.getAttribute('data-poll-ms')) || 2000;
    try {
      const res = await fetch(url, { headers: { accept: 'text/html' }, credentials: 'same-origin' });
      if (res.status === 401) {
        // Signed out elsewhere: a reload lands on the sign-in page.
        window.location.reload();
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const template = document.createElement('template');
      template.innerHTML = (await res.text()).trim();
      const next = template.content.firstElementChild;
      if (!next) throw new Error('empty fragment');
      el.replaceWith(next);
      if (next.hasAttribute('data-poll')) schedule(next, every);
    } catch (_err) {
      // The API restarting or a network blip: keep trying, more slowly, and say so.
      const note = el.querySelector('[data-live-note]');
      if (note) note.textContent = 'Live updates interrupted; retrying…';
      schedule(el, Math.min(MAX_BACKOFF_MS, Math.max(every, lastDelay * 2)));
    }
  }

  function start() {
    for (const el of document.querySelectorAll('[data-poll]')) {
      schedule(el, Number(el.getAttribute('data-poll-ms')) || 2000);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
