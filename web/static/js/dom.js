// A very small virtual DOM. h() describes elements as plain objects; patch()
// brings a real element's children in line with such a description, reusing
// the elements already there. Reuse matters more than speed here: focus, a
// <details> the user opened and text typed into an input all survive an
// update, because only the attributes and text the description sets are
// touched.
//
// Rules:
//   - attrs are attribute values (strings or numbers); true sets an empty
//     attribute, false/null/undefined leave it out. "key" is not an
//     attribute: children with keys are matched by key, others by position.
//   - "value" and "checked" are set as attributes, so they are defaults:
//     what the user typed or ticked is kept.
//   - a description reused as the same object is skipped entirely, so a
//     view can cache the description of something that did not change.
//   - an element with data-live-text manages its own text (a ticking timer):
//     its children are written when it is created and left alone after.

export function h(tag, attrs, ...children) {
  const a = attrs || {};
  return { tag, attrs: a, key: a.key, children: flatten(children, []) };
}

function flatten(list, out) {
  for (const c of list) {
    if (c === null || c === undefined || c === false || c === true) continue;
    if (Array.isArray(c)) flatten(c, out);
    else out.push(typeof c === 'object' ? c : String(c));
  }
  return out;
}

// patch makes parent's children match vnodes.
export function patch(parent, vnodes) {
  patchChildren(parent, Array.isArray(vnodes) ? flatten(vnodes, []) : [vnodes]);
}

function patchChildren(parent, vnodes) {
  let keyed = null;
  for (const v of vnodes) {
    if (typeof v !== 'string' && v.key !== undefined) {
      keyed = new Map();
      for (const n of parent.childNodes) if (n.__key !== undefined) keyed.set(n.__key, n);
      break;
    }
  }
  let ref = parent.firstChild;
  for (const v of vnodes) {
    let node = null;
    if (typeof v === 'string') {
      if (ref && ref.nodeType === 3) {
        if (ref.data !== v) ref.data = v;
        node = ref;
      } else {
        node = document.createTextNode(v);
      }
    } else if (v.key !== undefined) {
      node = keyed.get(v.key) || null;
      if (node && node.localName !== v.tag) node = null;
      if (node) {
        keyed.delete(v.key);
        update(node, v);
      } else {
        node = create(v);
      }
    } else if (ref && ref.nodeType === 1 && ref.__key === undefined && ref.localName === v.tag) {
      update(ref, v);
      node = ref;
    } else {
      node = create(v);
    }
    if (node === ref) ref = ref.nextSibling;
    else parent.insertBefore(node, ref);
  }
  while (ref) {
    const next = ref.nextSibling;
    parent.removeChild(ref);
    ref = next;
  }
}

function create(v) {
  const el = document.createElement(v.tag);
  el.__key = v.key;
  update(el, v, true);
  return el;
}

function update(el, v, fresh) {
  if (el.__vnode === v) return;
  const prev = el.__attrs || {};
  const next = {};
  for (const name in v.attrs) {
    if (name === 'key') continue;
    const val = v.attrs[name];
    if (val === null || val === undefined || val === false) continue;
    const s = val === true ? '' : String(val);
    next[name] = s;
    if (prev[name] !== s) el.setAttribute(name, s);
  }
  for (const name in prev) {
    if (!(name in next)) el.removeAttribute(name);
  }
  el.__attrs = next;
  if (fresh || !('data-live-text' in next)) patchChildren(el, v.children);
  el.__vnode = v;
}
