// csvd's page script: only what a plain HTML form cannot do. It sends
// PATCH, PUT and DELETE through the public API (with If-Match, so a change
// made on a copy someone else has changed since is refused, not lost, and
// with the page's CSRF token when signed in),
// names new columns, uploads CSV files, says a failed write's reason on
// the page, and keeps search addresses free of empty filters. Reading,
// searching and adding rows work without it.
'use strict';

(function () {
  const NOTICE = 'csvd-notice';

  // Shows what happened in a form's status line.
  function say(status, text, kind) {
    if (!status) return;
    // An older notice (say, "Saved.") no longer tells what happened last.
    const notice = document.getElementById('notice');
    if (notice) notice.hidden = true;
    status.textContent = text;
    status.className = 'status' + (kind ? ' ' + kind : '');
  }

  // Says a change was refused because the page is stale, with a way to reload.
  function stale(status, text) {
    say(status, text + ' Reload the page to see it as it is now.', 'error');
    const reload = document.createElement('button');
    reload.type = 'button';
    reload.textContent = 'Reload';
    reload.addEventListener('click', () => window.location.reload());
    status.append(reload);
  }

  // Goes to another page, with a notice to show there.
  function leave(url, text) {
    try {
      sessionStorage.setItem(NOTICE, text);
    } catch (e) {
      // Storage may be off; the page itself shows the change.
    }
    window.location.assign(url);
  }

  function showNotice() {
    let text = null;
    try {
      text = sessionStorage.getItem(NOTICE);
      sessionStorage.removeItem(NOTICE);
    } catch (e) {
      return;
    }
    const notice = document.getElementById('notice');
    if (text && notice) {
      notice.textContent = text;
      notice.hidden = false;
    }
  }

  // A signed-in page's CSRF token, which every write it sends carries.
  const csrf = document.querySelector('meta[name="csrf-token"]');

  function send(method, url, options) {
    const headers = { Accept: 'application/json' };
    if (csrf) headers['X-CSRF-Token'] = csrf.content;
    if (options.type) headers['Content-Type'] = options.type;
    if (options.tag) headers['If-Match'] = options.tag;
    if (options.createOnly) headers['If-None-Match'] = '*';
    return fetch(url, { method, headers, body: options.body, credentials: 'same-origin' });
  }

  // What a failed answer says (its problem document's detail).
  async function detail(response) {
    try {
      const problem = await response.json();
      if (problem && problem.detail) return problem.detail;
    } catch (e) {
      // Not a problem document: say the status.
    }
    return response.status + ' ' + response.statusText;
  }

  function tableUrl(name) {
    return '/' + encodeURIComponent(name);
  }

  // The [name, value] pairs of a form's "New column" fields.
  function newColumns(form) {
    const pairs = [];
    form.querySelectorAll('[data-pair]').forEach((pair) => {
      const name = pair.querySelector('[data-new-name]').value.trim();
      if (name) pairs.push([name, pair.querySelector('[data-new-value]').value]);
    });
    return pairs;
  }

  function addPair(button) {
    const fieldset = button.closest('[data-new-columns]');
    const pairs = fieldset.querySelectorAll('[data-pair]');
    const copy = pairs[pairs.length - 1].cloneNode(true);
    copy.querySelectorAll('input').forEach((input) => {
      const label = copy.querySelector('label[for="' + input.id + '"]');
      input.id = input.id.replace(/-\d+$/, '-' + pairs.length);
      if (label) label.htmlFor = input.id;
      input.value = '';
    });
    button.before(copy);
    copy.querySelector('[data-new-name]').focus();
  }

  // Adds a row with the same POST the form would send, as JSON, so that a
  // mistake is said here, with what was typed still in the form.
  async function addRow(form, status) {
    const fields = {};
    form.querySelectorAll('[name]').forEach((field) => {
      if (field.name !== '_csrf') fields[field.name] = field.value;
    });
    for (const [name, value] of newColumns(form)) fields[name] = value;
    say(status, 'Adding…');
    const response = await send('POST', form.action, {
      type: 'application/json',
      body: JSON.stringify(fields),
    });
    if (response.ok) {
      const location = response.headers.get('Location') || form.action;
      const id = decodeURIComponent(location.split('/').pop());
      leave(location, 'Row ' + id + ' was added.');
    } else {
      say(status, 'Not added: ' + (await detail(response)), 'error');
    }
  }

  // A row's form: PATCH the fields that changed, if the row is as it was.
  async function save(form, status) {
    const fields = {};
    form.querySelectorAll('[name]').forEach((field) => {
      if (!field.readOnly && field.value !== field.defaultValue) fields[field.name] = field.value;
    });
    for (const [name, value] of newColumns(form)) fields[name] = value;
    if (Object.keys(fields).length === 0) {
      say(status, 'Nothing to save: no field was changed.');
      return;
    }
    say(status, 'Saving…');
    const response = await send('PATCH', form.dataset.edit, {
      type: 'application/json',
      tag: form.dataset.tag,
      body: JSON.stringify(fields),
    });
    if (response.ok) {
      leave(window.location.pathname, 'Saved.');
    } else if (response.status === 412) {
      stale(status, 'Not saved: someone changed this row since you opened it.');
    } else if (response.status === 404) {
      stale(status, 'Not saved: someone deleted this row since you opened it.');
    } else {
      say(status, 'Not saved: ' + (await detail(response)), 'error');
    }
  }

  async function remove(button, status) {
    say(status, 'Deleting…');
    const response = await send('DELETE', button.dataset.delete, { tag: button.dataset.tag });
    if (response.ok) {
      leave(button.dataset.then, button.dataset.done);
    } else if (response.status === 412) {
      stale(status, 'Not deleted: it was changed since you opened this page.');
    } else if (response.status === 404) {
      stale(status, 'Not deleted: someone deleted it already.');
    } else {
      say(status, 'Not deleted: ' + (await detail(response)), 'error');
    }
  }

  // A CSV header line of these column names.
  function csvLine(names) {
    const quoted = names.map((name) =>
      /[",\r\n]/.test(name) ? '"' + name.replace(/"/g, '""') + '"' : name);
    return quoted.join(',') + '\n';
  }

  // A new, empty table; If-None-Match: * keeps an existing one safe.
  async function create(form, status) {
    const name = form.elements.name.value.trim();
    const columns = form.elements.columns.value.split(',').map((c) => c.trim()).filter((c) => c);
    if (columns.length === 0) {
      say(status, 'Name at least one column.', 'error');
      return;
    }
    say(status, 'Creating…');
    const response = await send('PUT', tableUrl(name), {
      type: 'text/csv',
      body: csvLine(columns),
      createOnly: true,
    });
    if (response.ok) {
      leave(tableUrl(name), 'The table ' + name + ' was created.');
    } else if (response.status === 412) {
      say(status, 'A table named ' + name + ' already exists.', 'error');
    } else {
      say(status, 'Not created: ' + (await detail(response)), 'error');
    }
  }

  // A table name from a file's name: `My data (2).csv` → `My_data_2`.
  function nameOf(file) {
    const name = file.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_-]+/g, '_')
      .replace(/^[^A-Za-z0-9]+/, '').replace(/_+$/, '').slice(0, 64);
    return name || 'table';
  }

  // PUT a CSV file as it is (the server checks it): a new table, or a
  // replaced one. On a table's page the replace carries its tag.
  async function upload(form, status) {
    const file = form.elements.file.files[0];
    if (!file) {
      say(status, 'Choose a CSV file first.', 'error');
      return;
    }
    const onTable = Boolean(form.dataset.url);
    const name = onTable ? '' : form.elements.name.value.trim() || nameOf(file.name);
    const url = onTable ? form.dataset.url : tableUrl(name);
    const replace = onTable || form.elements.replace.checked;
    say(status, 'Uploading ' + file.name + '…');
    const response = await send('PUT', url, {
      type: 'text/csv',
      body: file,
      tag: form.dataset.tag,
      createOnly: !replace,
    });
    if (response.ok) {
      const info = await response.json().catch(() => null);
      const rows = info && typeof info.rows === 'number' ? info.rows : null;
      const held = rows === null ? '' : ' It holds ' + rows + (rows === 1 ? ' row.' : ' rows.');
      leave(url, (response.status === 201 ? 'Table created from ' : 'Rows replaced from ') + file.name + '.' + held);
    } else if (response.status === 412 && onTable) {
      stale(status, 'Not replaced: the table changed since you opened this page.');
    } else if (response.status === 412) {
      say(status, 'A table named ' + name + ' already exists. Tick "Replace the table if it exists" to replace it.', 'error');
    } else {
      say(status, 'Not uploaded: ' + (await detail(response)), 'error');
    }
  }

  // Runs an action once at a time, saying so when the server cannot be reached.
  async function run(control, action, status, target) {
    if (control.dataset.busy) return;
    control.dataset.busy = 'yes';
    try {
      await action(target, status);
    } catch (e) {
      say(status, 'The server could not be reached: ' + e.message, 'error');
    } finally {
      delete control.dataset.busy;
    }
  }

  // A search sends only the filters that hold text, so its address stays short.
  function tidy(event) {
    const empty = [];
    for (const field of event.target.elements) {
      if (field.type === 'search' && field.name && field.value === '') empty.push(field.name);
    }
    for (const name of empty) {
      if (event.formData.getAll(name).every((value) => value === '')) event.formData.delete(name);
    }
  }

  const actions = [
    ['[data-add-row]', addRow],
    ['[data-edit]', save],
    ['[data-create]', create],
    ['[data-upload]', upload],
  ];

  document.addEventListener('submit', (event) => {
    const form = event.target;
    const found = actions.find(([selector]) => form.matches(selector));
    if (!found) return;
    event.preventDefault();
    run(form, found[1], form.querySelector('.status'), form);
  });

  document.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    if (!button) return;
    if (button.matches('[data-delete]')) {
      run(button, remove, button.parentElement.querySelector('.status'), button);
    } else if (button.matches('[data-add-pair]')) {
      addPair(button);
    }
  });

  document.querySelectorAll('form[data-query]').forEach((form) => form.addEventListener('formdata', tidy));
  document.querySelectorAll('.page-size select').forEach((select) =>
    select.addEventListener('change', () => select.form.requestSubmit()));
  document.querySelectorAll('[data-script]').forEach((control) => {
    control.disabled = false;
  });
  document.querySelectorAll('[data-new-columns]').forEach((fieldset) => {
    fieldset.hidden = false;
  });
  showNotice();
}());
