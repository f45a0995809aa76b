// csvd's page script: only what a plain HTML form cannot do. It sends
// PATCH, PUT and DELETE through the public API (with If-Match, so a change
// made on a copy someone else has changed since is refused, not lost, and
// with the page's CSRF token when signed in),
// names new columns, uploads CSV files, says a failed write's reason on
// the page, and keeps search addresses free of empty filters. It also
// follows the table's change feed, so that a table's page shows changes
// as they happen. Reading, searching and adding rows work without it.
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

  // The choices an upload form's preview makes (empty: as detected).
  function choices(form) {
    const chosen = {};
    for (const name of ['delimiter', 'quote', 'charset', 'header']) {
      const control = form.elements[name];
      if (control && control.value) chosen[name] = control.value;
    }
    return chosen;
  }

  function query(params) {
    const pairs = Object.entries(params).map(([k, v]) => k + '=' + encodeURIComponent(v));
    return pairs.length ? '?' + pairs.join('&') : '';
  }

  const DELIMITERS = { ',': 'commas', ';': 'semicolons', '\t': 'tabs', '|': 'bars (|)' };

  // Asks the server what it detects in the chosen file (POST /_detect,
  // which stores nothing) and shows it with the first rows, before
  // anything is uploaded. Kept on the form, so that an upload waits for it.
  function preview(form) {
    const box = form.querySelector('[data-preview]');
    const file = form.elements.file.files[0];
    if (!box || !file) {
      form.detected = null;
      if (box) box.hidden = true;
      return null;
    }
    const chosen = choices(form);
    if (!chosen.delimiter && /\.tsv$/i.test(file.name)) chosen.delimiter = 'tab';
    const detected = box.querySelector('[data-detected]');
    detected.textContent = 'Reading ' + file.name + '…';
    detected.className = 'detected';
    box.hidden = false;
    const asked = send('POST', '/_detect' + query(Object.assign({ rows: 5 }, chosen)), {
      type: 'text/csv',
      body: file,
    }).then(async (response) => {
      if (!response.ok) throw new Error(await detail(response));
      return response.json();
    }).then((seen) => {
      if (form.detected !== asked) return seen;
      show(box, file, seen);
      return seen;
    });
    form.detected = asked;
    asked.catch((e) => {
      if (form.detected !== asked) return;
      detected.textContent = 'Could not read ' + file.name + ': ' + e.message;
      detected.className = 'detected error';
    });
    return asked;
  }

  // Draws what was detected: the dialect in words, then the first rows.
  function show(box, file, seen) {
    const detected = box.querySelector('[data-detected]');
    const sample = box.querySelector('[data-sample]');
    sample.replaceChildren();
    if (!seen.readable) {
      detected.textContent = file.name + ' cannot be read this way: ' + seen.error;
      detected.className = 'detected error';
      return;
    }
    const parts = [
      'separated by ' + (DELIMITERS[seen.delimiter] || seen.delimiter),
      'quoted with ' + seen.quote,
      seen.encoding + (seen.bom ? ' with a byte-order mark' : ''),
      seen.line_ends + ' line ends',
      seen.header ? 'the first line names the columns' : 'no header line',
      plural(seen.columns.length, 'column', 'columns') + ', ' + plural(seen.rows, 'row', 'rows'),
    ];
    detected.textContent = 'Detected in ' + file.name + ': ' + parts.join('; ') + '.' +
      (seen.warnings.length ? ' ' + seen.warnings.join('. ') + '.' : '');
    detected.className = 'detected';
    const caption = document.createElement('caption');
    caption.textContent = 'The first rows, as they will be read';
    const head = document.createElement('thead');
    const names = document.createElement('tr');
    for (const name of seen.columns) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = name;
      names.append(th);
    }
    head.append(names);
    const body = document.createElement('tbody');
    for (const row of seen.first_rows) {
      const tr = document.createElement('tr');
      for (const cell of row) {
        const td = document.createElement('td');
        td.textContent = cell;
        tr.append(td);
      }
      body.append(tr);
    }
    sample.append(caption, head, body);
  }

  // The query and type that upload a file as the preview read it.
  function dialectOf(seen) {
    const params = {
      delimiter: seen.delimiter === '\t' ? 'tab' : seen.delimiter,
      quote: seen.quote,
      header: seen.header ? '1' : '0',
    };
    return { params, type: 'text/csv; charset=' + seen.encoding };
  }

  // PUT a CSV file (the server checks it): a new table, or a replaced
  // one, read in the dialect and encoding the preview showed. On a
  // table's page the replace carries its tag.
  async function upload(form, status) {
    const file = form.elements.file.files[0];
    if (!file) {
      say(status, 'Choose a CSV file first.', 'error');
      return;
    }
    let seen = null;
    try {
      seen = await (form.detected || preview(form));
    } catch (e) {
      say(status, 'Not uploaded: ' + e.message, 'error');
      return;
    }
    if (seen && !seen.readable) {
      say(status, 'Not uploaded: ' + seen.error + ' Change the choices above to read it otherwise.', 'error');
      return;
    }
    const dialect = seen ? dialectOf(seen) : { params: {}, type: 'text/csv' };
    const onTable = Boolean(form.dataset.url);
    const name = onTable ? '' : form.elements.name.value.trim() || nameOf(file.name);
    const url = onTable ? form.dataset.url : tableUrl(name);
    const replace = onTable || form.elements.replace.checked;
    say(status, 'Uploading ' + file.name + '…');
    const response = await send('PUT', url + query(dialect.params), {
      type: dialect.type,
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

  document.querySelectorAll('form[data-upload]').forEach((form) => {
    form.addEventListener('change', (event) => {
      if (event.target.matches('input[type=file], [data-preview] select')) preview(form);
    });
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
  // Live pages: a table's page and a row's page follow the change feed
  // (Server-Sent Events). Nothing a change holds is ever read as HTML:
  // every text goes in through textContent.
  const STATES = {
    connecting: 'connecting…',
    live: 'live',
    reconnecting: 'reconnecting…',
    offline: 'offline',
  };

  // The "live" sign in the page's header; returns what sets its state.
  function liveSign() {
    const header = document.querySelector('header.top');
    if (!header) return () => {};
    const sign = document.createElement('p');
    sign.className = 'live';
    sign.setAttribute('aria-live', 'polite');
    sign.title = 'Changes show on this page as they happen';
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.setAttribute('aria-hidden', 'true');
    const words = document.createElement('span');
    sign.append(dot, words);
    header.insertBefore(sign, header.querySelector('.account'));
    return (state) => {
      sign.dataset.state = state;
      words.textContent = STATES[state];
    };
  }

  // A number as the feed wrote it (`1.50` stays `1.50`).
  class Num {
    constructor(text) {
      this.text = text;
    }
  }

  // A change's JSON, its numbers kept as written where the browser can.
  function parseChange(data) {
    return JSON.parse(data, (key, value, context) => {
      if (typeof value !== 'number') return value;
      return new Num(context && typeof context.source === 'string' ? context.source : String(value));
    });
  }

  // A cell's text as the table shows it.
  function cellText(value) {
    if (value === undefined || value === null) return '';
    if (value instanceof Num) return value.text;
    return String(value);
  }

  // A path segment as the server writes it in links.
  function segment(text) {
    return encodeURIComponent(text).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  }

  // Follows a feed: `apply` gets each change; `gone` is called when the
  // browser stops trying (the position is too old, or the feed refused).
  // A page hidden for a while lets its connection go (a browser has few
  // per server) and, shown again, resumes from the last change it took.
  function follow(url, apply, gone) {
    if (typeof EventSource !== 'function') return;
    const show = liveSign();
    const address = new URL(url, window.location.href);
    let source = null;
    let away = null;

    function open() {
      show('connecting');
      const current = new EventSource(address.href);
      source = current;
      current.addEventListener('open', () => show('live'));
      current.addEventListener('error', () => {
        if (current.readyState === EventSource.CLOSED) {
          show('offline');
          gone();
        } else {
          show('reconnecting');
        }
      });
      // The server ends this stream; the browser comes back where it left.
      current.addEventListener('end', () => show('reconnecting'));
      for (const op of ['insert', 'update', 'delete', 'replace_table', 'delete_table']) {
        current.addEventListener(op, (event) => {
          if (event.lastEventId) address.searchParams.set('since', event.lastEventId);
          let change;
          try {
            change = parseChange(event.data);
          } catch (e) {
            return;
          }
          apply(op, change);
        });
      }
    }

    function close() {
      if (source) source.close();
      source = null;
    }

    open();
    document.addEventListener('visibilitychange', () => {
      clearTimeout(away);
      if (document.visibilityState === 'hidden') {
        away = setTimeout(close, 30000);
      } else if (!source) {
        open();
      }
    });
    window.addEventListener('pagehide', close);
    // A page brought back from the browser's history missed changes.
    window.addEventListener('pageshow', (event) => {
      if (event.persisted) window.location.reload();
    });
  }

  // A notice that the page is behind, with a link that reloads it.
  function behind(before) {
    const notice = document.createElement('p');
    notice.className = 'live-notice';
    notice.setAttribute('role', 'status');
    notice.hidden = true;
    before.before(notice);
    return (text) => {
      const reload = document.createElement('a');
      reload.href = window.location.href;
      reload.textContent = 'reload';
      notice.replaceChildren(text + ' — ', reload);
      notice.hidden = false;
    };
  }

  function plural(n, one, many) {
    return n.toLocaleString('en-US') + ' ' + (n === 1 ? one : many);
  }

  // How many rows an address of the API selects (its X-Total-Count).
  async function total(url) {
    try {
      const response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      const n = parseInt(response.headers.get('X-Total-Count'), 10);
      return response.ok && n >= 0 ? n : null;
    } catch (e) {
      return null;
    }
  }

  // A table's page: changes to its rows show in place.
  function liveTable(table) {
    const tbody = table.tBodies[0];
    const data = table.dataset;
    const columns = Array.from(table.querySelectorAll('thead th[data-column]'), (th) => th.dataset.column);
    const filtered = 'filtered' in data;
    const start = Number(data.start);
    const size = Number(data.size);
    const count = { rows: Number(data.rows), matching: Number(data.matching) };
    const say = behind(table.closest('.scroll') || table);
    let fresh = 0;
    let changed = false;
    let why = null;

    // The view's filters, as the API takes them (no position, no fields).
    const view = new URLSearchParams(new URL(data.feed, window.location.href).search);
    const picked = view.has('_fields');
    view.delete('since');
    view.delete('_fields');

    function tell() {
      const parts = [];
      if (why) parts.push(why);
      if (fresh > 0) parts.push(plural(fresh, 'new row', 'new rows'));
      if (changed) parts.push('rows of this view changed');
      if (parts.length === 0) return;
      const text = parts.join('; ');
      say(text.charAt(0).toUpperCase() + text.slice(1));
    }

    function showCounts() {
      const rows = document.querySelector('[data-count="rows"]');
      if (rows) rows.textContent = plural(count.rows, 'row', 'rows');
      const range = document.querySelector('[data-range]');
      if (!range) return;
      const shown = tbody.rows.length;
      const first = Math.min(start, count.matching);
      let text = shown === 0 ? 'No rows'
        : 'Rows ' + (first + 1).toLocaleString('en-US') + '–' + (first + shown).toLocaleString('en-US')
          + ' of ' + count.matching.toLocaleString('en-US');
      if (count.matching !== count.rows) text += ' (of ' + count.rows.toLocaleString('en-US') + ' in the table)';
      range.textContent = text;
    }

    // The counts, asked again once a burst of changes is over.
    let recounting = null;
    function recount() {
      clearTimeout(recounting);
      recounting = setTimeout(async () => {
        const limited = new URLSearchParams(view);
        limited.set('_limit', '1');
        const matching = await total(data.table + '?' + limited);
        const rows = filtered ? await total(data.table + '?_limit=1') : matching;
        if (matching !== null) count.matching = matching;
        if (rows !== null) count.rows = rows;
        showCounts();
      }, 150);
    }

    function rowOf(id) {
      return id === undefined ? null : tbody.querySelector('tr[data-id="' + CSS.escape(id) + '"]');
    }

    // A row's cells, drawn as the server draws them.
    function cells(row) {
      return columns.map((column) => {
        const value = row[column];
        const text = cellText(value);
        const td = document.createElement('td');
        if (column === data.idColumn && text !== '') {
          const link = document.createElement('a');
          link.href = data.table + '/' + segment(text);
          link.textContent = text;
          td.append(link);
        } else {
          if (value instanceof Num) td.className = 'num';
          td.textContent = text;
        }
        return td;
      });
    }

    function flash(tr) {
      tr.classList.add('changed');
      setTimeout(() => tr.classList.remove('changed'), 1200);
    }

    function draw(tr, row) {
      tr.replaceChildren(...cells(row));
      flash(tr);
    }

    // In a filtered view, whether a changed row still belongs to it.
    async function check(tr, id) {
      if (!data.idColumn) return;
      const one = new URLSearchParams(view);
      one.append(data.idColumn, id);
      one.set('_limit', '1');
      if ((await total(data.table + '?' + one)) === 0) {
        tr.remove();
        showCounts();
      }
    }

    function apply(op, change) {
      const tr = rowOf(change.id);
      if (change.row && !picked && Object.keys(change.row).some((c) => !columns.includes(c))) {
        why = why || 'the table has new columns';
      }
      if (op === 'insert' && change.row) {
        if (tr) {
          draw(tr, change.row);
        } else if ('end' in data && tbody.rows.length < size) {
          const added = document.createElement('tr');
          if (change.id !== undefined) added.dataset.id = change.id;
          tbody.append(added);
          draw(added, change.row);
          document.querySelectorAll('p.empty').forEach((p) => {
            p.hidden = true;
          });
        } else {
          fresh += 1;
        }
      } else if (op === 'update' && change.row) {
        if (tr) {
          draw(tr, change.row);
          if (filtered) check(tr, change.id);
        } else if (filtered || data.idColumn === undefined) {
          changed = true;
        }
      } else if (op === 'delete') {
        if (tr) {
          tr.remove();
        } else if (data.idColumn === undefined) {
          changed = true;
        }
      } else if (op === 'replace_table') {
        why = 'the table was replaced';
      } else if (op === 'delete_table') {
        why = 'the table was deleted';
      }
      tell();
      if (op !== 'delete_table') recount();
      showCounts();
    }

    follow(data.feed, apply, () => {
      why = why || 'live changes stopped';
      tell();
    });
  }

  // A row's page: says when the row changes, since its form is then stale.
  function liveRow(heading) {
    const say = behind(heading.nextElementSibling || heading);
    const words = {
      insert: 'This row was changed',
      update: 'This row was changed',
      delete: 'This row was deleted',
      replace_table: 'The table was replaced',
      delete_table: 'The table was deleted',
    };
    follow(heading.dataset.rowFeed, (op) => say(words[op]), () => {});
  }

  document.querySelectorAll('table[data-feed]').forEach(liveTable);
  document.querySelectorAll('[data-row-feed]').forEach(liveRow);
  showNotice();
}());
