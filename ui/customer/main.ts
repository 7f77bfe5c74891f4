// The customer reservation page: ticket code + e-mail (or a token link) →
// ticket state → activate → month calendar → slot → contact → reserve →
// confirmation with QR code and .ics; reschedule or cancel before the visit.
// Vanilla TypeScript, one module per screen (signin, ticket, slots,
// confirmation) over shared helpers (dom, state). Every rule — what can be
// booked, changed or cancelled, what a valid e-mail or phone is — is the
// server's: the page shows its answers.

import './style.css';
import { api } from './api';
import { $, clearMessages, S } from './dom';
import { renderSignIn } from './signin';
import { loadSession, nav, saveSession, st } from './state';
import { openTicket, renderTicket } from './ticket';

nav.signIn = renderSignIn;
nav.openTicket = openTicket;
nav.renderTicket = () => renderTicket();

const signOutBtn = $<HTMLButtonElement>('#sign-out')!;
signOutBtn.textContent = S.signOut;
signOutBtn.addEventListener('click', () => {
  const code = st.session?.ticket_code ?? '';
  // Revoke the token on the server too: a copy of it (a shared link, a
  // screenshot, this tab's storage) stops working. Offline, it still expires.
  if (st.session) void api.signOut(st.session.token).catch(() => undefined);
  saveSession(null);
  clearMessages();
  st.mode = 'reserve';
  renderSignIn(code);
});
document.title = `${S.appName} — ${S.pageTitle}`;
document.documentElement.lang = S.locale.slice(0, 2);

function start() {
  performance.mark('entrada:start');
  const q = new URLSearchParams(location.search);
  const token = q.get('token');
  const ticket = q.get('ticket') ?? q.get('code');
  // Keep the token (and the code that goes with it) out of the address bar,
  // history, bookmarks and screenshots once read, with or without a ticket.
  if (token !== null) history.replaceState(null, '', location.pathname);
  if (token && ticket) {
    saveSession({ token, ticket_code: ticket });
    void openTicket();
    return;
  }
  const saved = loadSession();
  if (saved && (!ticket || ticket === saved.ticket_code)) {
    saveSession(saved);
    void openTicket();
    return;
  }
  saveSession(null);
  renderSignIn(ticket ?? '');
}

start();
