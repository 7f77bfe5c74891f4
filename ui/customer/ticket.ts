// Ticket screen: reads the ticket's status and shows what the server says the
// customer may do (activate, pick a time, see or change the booking).

import { api, read, type Reservation, type TicketState } from './api';
import { renderConfirmation } from './confirmation';
import { $, app, clearMessages, fmtDateTime, fmtDay, fmtMonth, focus, h, isBusy, notBusy, S, say, setBusy, showError } from './dom';
import { prefetchMonths, renderCalendar, takeEarly } from './slots';
import { errorText, nav, sessionLost, st } from './state';

export async function openTicket(after?: string) {
  if (!st.session) return nav.signIn('');
  app.replaceChildren(h('p', { class: 'loading' }, S.loadingTicket));
  const early = takeEarly();
  prefetchMonths(early);
  // The first Intl formatter loads locale data (~90 ms on a slow phone): pay
  // for it now, while the requests are in flight, not after they return.
  fmtMonth.format(new Date());
  fmtDay.format(new Date());
  try {
    st.ts = await (early ? read<TicketState>(early.status) : api.status(st.session.token, st.session.ticket_code));
    performance.mark('entrada:status');
  } catch (e) {
    if (!sessionLost(e)) {
      app.replaceChildren(h('p', { class: 'loading' }, errorText(e)));
      showError(errorText(e));
    }
    return;
  }
  await renderTicket(after);
}

export function activeReservation(ts: TicketState): Reservation | null {
  const r = ts.reservation;
  return r && r.status !== 'CANCELLED' ? r : null;
}

export async function renderTicket(after?: string) {
  const ts = st.ts!;
  const t = ts.ticket;
  const { reserve } = ts.actions;
  app.replaceChildren();
  const heading = h('h1', { id: 'view-heading' }, S.ticketHeading(t.ticket_code));
  app.append(heading);
  const r = activeReservation(ts);

  if (r && r.status === 'VERIFIED') {
    renderConfirmation(ts, r, true);
  } else if (reserve.reason === 'TICKET_CANCELLED') {
    app.append(h('p', { class: 'notice' }, S.ticketCancelled));
  } else if (reserve.reason === 'TICKET_REDEEMED') {
    app.append(h('p', { class: 'notice' }, S.ticketRedeemed));
  } else if (r && st.mode !== 'reschedule') {
    renderConfirmation(ts, r, false);
  } else if (reserve.reason === 'TICKET_EXPIRED') {
    app.append(h('p', { class: 'notice' }, S.ticketExpired(t.expires_at ? fmtDateTime.format(new Date(t.expires_at)) : '')));
  } else if (t.activation_status === 'inactive') {
    renderActivate();
  } else {
    // Released as a no-show (the venue's no_show_release_minutes): say so
    // above the calendar, where a new time can be picked.
    const released = ts.reservation?.status === 'CANCELLED' ? ts.reservation.no_show_at : undefined;
    if (released) {
      app.append(h('p', { class: 'notice', id: 'no-show' }, S.noShowReleased(fmtDateTime.format(new Date(released)))));
    }
    await renderCalendar();
  }
  if (after) say(after);
  if (!app.contains(document.activeElement) || document.activeElement === app) focus($('#panel-heading') ?? heading);
}

function renderActivate() {
  const btn = h('button', { type: 'button', class: 'primary', id: 'activate' }, S.activateButton);
  btn.addEventListener('click', async () => {
    if (isBusy()) return;
    setBusy(btn, true, S.activating);
    try {
      await api.activate(st.session!.token, st.session!.ticket_code);
      notBusy();
      clearMessages();
      await openTicket(S.activated);
    } catch (e) {
      notBusy();
      setBusy(btn, false, '');
      if (!sessionLost(e)) showError(errorText(e));
    }
  });
  app.append(
    h('section', { class: 'card', 'aria-labelledby': 'panel-heading' },
      h('h2', { id: 'panel-heading' }, S.activateHeading),
      h('p', {}, S.activateIntro),
      btn,
    ),
  );
}
