// Confirmation screen: the booked visit, its QR code and calendar file, and
// "change" / "cancel" exactly when the server's `actions` allow them (with
// the server's reason when not).

import { api, type Reservation, type TicketState } from './api';
import { dateOf, hhmm } from './dates';
import { app, clearMessages, fmtFullDay, focus, h, isBusy, notBusy, S, setBusy, showError } from './dom';
import { icsFor, icsHref } from './ics';
import { qrSvg } from './qr';
import { errorText, nav, reasonText, sessionLost, st } from './state';

export function renderConfirmation(ts: TicketState, r: Reservation, verified: boolean) {
  const slot = ts.slot;
  const when = slot ? `${fmtFullDay.format(dateOf(slot.date))}, ${hhmm(slot.start_time)}–${hhmm(slot.end_time)}` : S.slotUnknown;
  const code = ts.ticket.ticket_code;
  const section = h('section', { class: 'card confirmation', id: 'confirmation', 'aria-labelledby': 'panel-heading' },
    h('h2', { id: 'panel-heading' }, verified ? S.verifiedHeading : S.confirmedHeading),
    h('dl', { class: 'facts' },
      h('dt', {}, S.visitWhen), h('dd', { 'data-slot-when': slot?.id ?? '' }, when),
      h('dt', {}, S.visitTicket), h('dd', {}, code),
      h('dt', {}, S.visitContact), h('dd', {}, `${r.customer_email} · ${r.customer_phone}`),
    ),
  );
  const figure = h('figure', { class: 'qr-box' });
  try {
    figure.append(qrSvg(ts.signed_code, S.qrAlt(code)));
  } catch {
    /* a code too long for a QR would still be shown as text below */
  }
  figure.append(h('figcaption', {}, S.qrCaption));
  section.append(
    figure,
    h('details', { class: 'signed' },
      h('summary', {}, S.signedCodeLabel),
      h('code', { id: 'signed-code' }, ts.signed_code)),
  );
  if (slot) {
    const ics = icsFor(slot, r.id, S.icsTitle(code), `${S.visitTicket}: ${code}`);
    section.append(h('a', { class: 'button', id: 'ics', href: icsHref(ics), download: `entrada-${code}.ics` }, S.addToCalendar));
  }
  if (!verified) section.append(...changeAndCancel(ts, r));
  app.append(section);
}

/** The buttons the server allows, and its reason for any it does not. */
function changeAndCancel(ts: TicketState, r: Reservation): HTMLElement[] {
  const { change: canChange, cancel: canCancel } = ts.actions;
  const buttons = h('div', { class: 'row actions' });
  const confirmBox = h('div', { id: 'cancel-confirm' });
  if (canChange.allowed) {
    const change = h('button', { type: 'button', id: 'change' }, S.changeButton);
    change.addEventListener('click', () => {
      st.mode = 'reschedule';
      clearMessages();
      void nav.renderTicket();
    });
    buttons.append(change);
  }
  if (canCancel.allowed) {
    const cancel = h('button', { type: 'button', id: 'cancel', class: 'danger' }, S.cancelButton);
    cancel.addEventListener('click', () => askCancel(r, cancel, confirmBox));
    buttons.append(cancel);
  }
  // One line per distinct reason (both are usually the same one).
  const reasons = [...new Set([canChange.reason, canCancel.reason].filter((x): x is string => !!x))];
  const why = reasons.map((code) =>
    h('p', { class: 'notice', 'data-reason': code }, reasonText(code) ?? S.cannotChange),
  );
  return [...(buttons.childElementCount ? [buttons] : []), ...why, confirmBox];
}

function askCancel(r: Reservation, cancel: HTMLButtonElement, confirmBox: HTMLElement) {
  const yes = h('button', { type: 'button', class: 'danger', id: 'cancel-yes' }, S.cancelConfirmYes);
  const no = h('button', { type: 'button', id: 'cancel-no' }, S.cancelConfirmNo);
  const q = h('p', { id: 'cancel-question', tabindex: '-1' }, S.cancelConfirmQuestion);
  no.addEventListener('click', () => {
    confirmBox.replaceChildren();
    focus(cancel);
  });
  yes.addEventListener('click', async () => {
    if (isBusy()) return;
    setBusy(yes, true, S.cancelling);
    try {
      await api.cancel(st.session!.token, r.id);
      notBusy();
      clearMessages();
      st.mode = 'reserve';
      await nav.openTicket(S.cancelledStatus);
    } catch (e) {
      notBusy();
      setBusy(yes, false, '');
      if (sessionLost(e)) return;
      // The server said no (e.g. the visit has started): show its state.
      st.mode = 'reserve';
      await nav.openTicket();
      showError(errorText(e));
    }
  });
  confirmBox.replaceChildren(q, h('div', { class: 'row' }, yes, no));
  focus(q);
}
