// Sign-in screen: ticket code + purchase e-mail → a customer session.

import { api, ApiError } from './api';
import { $, app, clearMessages, field, focus, h, notBusy, report, reportServer, required, S, setBusy, showError, isBusy } from './dom';
import { errorText, nav, saveSession, st } from './state';

export function renderSignIn(prefillCode = '', error?: string) {
  st.ts = null;
  app.replaceChildren();
  const heading = h('h1', { id: 'view-heading' }, S.signInHeading);
  const form = h(
    'form',
    { id: 'sign-in', novalidate: true },
    field('code', S.ticketCodeLabel, S.ticketCodeHint, {
      type: 'text',
      autocomplete: 'off',
      autocapitalize: 'characters',
      spellcheck: 'false',
      required: true,
      value: prefillCode,
    }),
    field('email', S.emailLabel, S.purchaseEmailHint, {
      type: 'email',
      autocomplete: 'email',
      inputmode: 'email',
      required: true,
    }),
    h('button', { type: 'submit', class: 'primary', id: 'sign-in-button' }, S.signInButton),
  );
  form.addEventListener('submit', onSignIn);
  app.append(heading, h('p', {}, S.signInIntro), form);
  if (error) {
    showError(error);
    focus(heading);
  } else {
    focus($(prefillCode ? '#email' : '#code'));
  }
}

async function onSignIn(e: Event) {
  e.preventDefault();
  if (isBusy()) return;
  if (!report([required('code', S.ticketCodeLabel), required('email', S.emailLabel)])) return;
  const ticket_code = $<HTMLInputElement>('#code')!.value.trim();
  const email = $<HTMLInputElement>('#email')!.value.trim();
  const btn = $<HTMLButtonElement>('#sign-in-button')!;
  setBusy(btn, true, S.signingIn);
  try {
    const s = await api.session({ ticket_code, email });
    saveSession(s);
    clearMessages();
    await nav.openTicket();
  } catch (err) {
    setBusy(btn, false, '');
    const fields = { ticket_code: 'code', email: 'email' };
    const labels = { ticket_code: S.ticketCodeLabel, email: S.emailLabel };
    if (!(err instanceof ApiError && err.status === 422 && reportServer(err.fields, fields, labels))) {
      showError(errorText(err, 'session'));
      focus($('#code'));
    }
  } finally {
    notBusy();
  }
}
