// Form plumbing shared by the pages: labelled fields, errors shown next to
// the field they concern (from the page's own checks or from the server's
// 400, which names the field), and the unsaved-changes guard.

import { h } from './dom.js';

let fieldSequence = 0;

/** A labelled input: {wrapper, input}. `hint` is tied to it by aria-describedby. */
export function field({ id, label, value = '', hint, type = 'text', attributes = {} }) {
  const inputId = id || `field-${++fieldSequence}`;
  const hintId = hint ? `${inputId}-hint` : undefined;
  const input = h('input', { id: inputId, name: inputId, type, value, 'aria-describedby': hintId, ...attributes });
  const wrapper = h('div', { class: 'field' },
    h('label', { for: inputId }, label),
    input,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
  );
  return { wrapper, input };
}

/** A labelled select of `options` ([value, text] pairs or plain values). */
export function select({ id, label, options, value, labelHidden = false }) {
  const element = h('select', { id, name: id },
    options.map((option) => {
      const [optionValue, optionText] = Array.isArray(option) ? option : [option, option];
      return h('option', { value: optionValue, selected: optionValue === value }, optionText);
    }));
  const wrapper = h('div', { class: 'field' },
    h('label', { for: id, class: labelHidden ? 'visually-hidden' : undefined }, label),
    element,
  );
  return { wrapper, select: element };
}

/** Show `message` under `input` and mark it invalid. */
export function showFieldError(input, message) {
  const errorId = `${input.id}-error`;
  let error = document.getElementById(errorId);
  if (!error) {
    error = h('p', { class: 'field-error', id: errorId });
    input.insertAdjacentElement('afterend', error);
  }
  error.textContent = message;
  input.setAttribute('aria-invalid', 'true');
  const described = (input.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
  if (!described.includes(errorId)) described.push(errorId);
  input.setAttribute('aria-describedby', described.join(' '));
}

/** Remove every field error and the form-level message inside `root`. */
export function clearErrors(root) {
  for (const error of root.querySelectorAll('.field-error')) {
    const input = root.querySelector(`[aria-describedby~="${error.id}"]`);
    if (input) {
      input.removeAttribute('aria-invalid');
      const rest = input.getAttribute('aria-describedby').split(' ').filter((id) => id !== error.id);
      if (rest.length) input.setAttribute('aria-describedby', rest.join(' '));
      else input.removeAttribute('aria-describedby');
    }
    error.remove();
  }
  for (const message of root.querySelectorAll('.form-error, .form-ok')) message.remove();
}

/** A message at the top of a form: kind 'error' or 'ok'. */
export function formMessage(container, kind, text) {
  const message = h('p', { class: kind === 'ok' ? 'form-ok' : 'form-error', role: kind === 'ok' ? 'status' : 'alert' }, text);
  const heading = container.firstElementChild;
  if (heading && /^H[1-6]$/.test(heading.tagName)) heading.after(message);
  else container.prepend(message);
  return message;
}

/**
 * Show field problems: `errors` maps field names to messages, `inputs` maps
 * field names to their inputs. Problems without an input go to the form-level
 * message. Focuses the first invalid input. Returns the number shown.
 */
export function showErrors(container, errors, inputs) {
  const unplaced = [];
  let first = null;
  for (const [name, message] of Object.entries(errors)) {
    const input = inputs[name];
    if (input) {
      showFieldError(input, message);
      first = first || input;
    } else {
      unplaced.push(`${name}: ${message}`);
    }
  }
  if (unplaced.length) formMessage(container, 'error', unplaced.join(' '));
  else if (first) formMessage(container, 'error', 'Please correct the highlighted fields.');
  if (first) first.focus();
  return Object.keys(errors).length;
}

/** Field problems of a refused API call, in the shape showErrors takes. */
export function serverErrors(error) {
  const errors = {};
  for (const item of error.fields || []) {
    errors[item.message] = item.description || error.message;
  }
  if (Object.keys(errors).length === 0) errors[`The server refused the change (${error.status})`] = error.message;
  return errors;
}

/**
 * The unsaved-changes guard: a page registers a function that tells whether
 * its form differs from what was loaded; navigation asks before leaving.
 */
const dirtyChecks = new Set();

export const unsaved = {
  /** Register `isDirty`; returns a function that unregisters it. */
  track(isDirty) {
    dirtyChecks.add(isDirty);
    return () => dirtyChecks.delete(isDirty);
  },
  any() {
    for (const isDirty of dirtyChecks) if (isDirty()) return true;
    return false;
  },
  clear() {
    dirtyChecks.clear();
  },
};
