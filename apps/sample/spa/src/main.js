import './style.css';

const $ = (id) => document.getElementById(id);

function setStatus(text, isError = false) {
  const el = $('status');
  el.textContent = text;
  el.className = isError ? 'error' : '';
}

async function getJson(url, options) {
  const res = await fetch(url, options);
  let body = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
  }
  return body;
}

async function loadVersion() {
  try {
    const v = await getJson('/api/version');
    $('api-version').textContent = v.version;
    const color = $('api-color');
    color.textContent = v.color;
    color.dataset.color = v.color;
  } catch (err) {
    $('api-version').textContent = 'unreachable';
    setStatus(`API: ${err.message}`, true);
  }
}

function renderItems(items) {
  const list = $('items');
  list.replaceChildren(
    ...items
      .slice()
      .reverse()
      .map((item) => {
        const li = document.createElement('li');
        li.textContent = item.name;
        const meta = document.createElement('small');
        meta.textContent = ` #${item.id} via ${item.version}/${item.color}`;
        li.append(meta);
        return li;
      }),
  );
}

async function loadItems() {
  try {
    const { items } = await getJson('/api/items');
    renderItems(items);
  } catch (err) {
    setStatus(`Items: ${err.message}`, true);
  }
}

$('add-item').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('item-name');
  const name = input.value.trim();
  if (!name) return;
  try {
    const item = await getJson('/api/items', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    input.value = '';
    setStatus(`Added #${item.id} "${item.name}"`);
    await loadItems();
  } catch (err) {
    setStatus(`Could not add: ${err.message}`, true);
  }
});

loadVersion();
loadItems();
