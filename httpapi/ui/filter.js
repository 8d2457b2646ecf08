// The list's filter, as typed in its box and kept in the URL (#/?q=...):
// words and label terms, separated by spaces or commas, all of which a job
// must meet. A term is a selector's (see ParseSelector): key=value (or
// key==value), key!=value (also a job without the key), !key (has it not).
// A word without an operator matches a job whose name contains it (in any
// case) or which has a label of that key: a name cannot hold '=' or '!', so
// only a bare word is ambiguous, and it means both.

// Keys and values hold these characters only; the server checks the rest
// (lengths, first and last characters) when the terms are sent to it.
const LABEL_CHARS = /^[A-Za-z0-9._/-]*$/;

// parseFilter reads a filter: {words, terms: [{key, op, value}], bad: the
// terms that are not terms, text: q as typed}.
export function parseFilter(q) {
  const f = { words: [], terms: [], bad: [], text: q || '' };
  for (const t of f.text.split(/[\s,]+/)) {
    if (!t) continue;
    const m = /^(?:!([^=!]*)|([^=!]*)(!=|==|=)([^=!]*))$/.exec(t);
    if (!t.includes('=') && !t.startsWith('!')) f.words.push(t);
    else if (!m || !(m[1] || m[2]) || !LABEL_CHARS.test(m[1] || m[2]) || !LABEL_CHARS.test(m[4] || '')) f.bad.push(t);
    else if (m[1] !== undefined) f.terms.push({ key: m[1], op: '!', value: '' });
    else f.terms.push({ key: m[2], op: m[3] === '!=' ? '!=' : '=', value: m[4] });
  }
  return f;
}

// matches reports whether the filter chooses a job: the one place the
// dashboard works out a filter, with the selector's meaning for its terms.
export function matches(f, name, labels) {
  const l = labels || {};
  const has = (k) => Object.hasOwn(l, k);
  return f.bad.length === 0 &&
    f.words.every((w) => name.toLowerCase().includes(w.toLowerCase()) || has(w)) &&
    f.terms.every((t) => {
      switch (t.op) {
        case '=': return has(t.key) && l[t.key] === t.value;
        case '!=': return !has(t.key) || l[t.key] !== t.value;
        default: return !has(t.key);
      }
    });
}

// selectorOf is the filter as a selector, for the bulk routes; null if it
// has words, which no selector can say.
export function selectorOf(f) {
  if (f.words.length || f.bad.length) return null;
  return f.terms.map((t) => (t.op === '!' ? '!' + t.key : t.key + t.op + t.value)).join(',');
}

// termOf is the term that chooses the jobs with a label.
export const termOf = (key, value) => key + '=' + value;

// withTerm is the filter's text with a term added, unless it has it already.
export function withTerm(text, term) {
  const have = text.split(/[\s,]+/).filter(Boolean);
  return have.includes(term) ? text : have.concat(term).join(' ');
}

// filterOfHash reads the filter from the list's URL: #/?q=...
export function filterOfHash(hash) {
  const i = hash.indexOf('?');
  return i < 0 ? '' : new URLSearchParams(hash.slice(i + 1)).get('q') || '';
}

// hashOf is the list's URL with a filter.
export function hashOf(text) {
  const q = text.trim();
  return q ? '#/?' + new URLSearchParams({ q }).toString() : '#/';
}
