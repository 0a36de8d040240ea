// smoke.js: one virtual user walks every endpoint once a second and checks
// the answers; a failed check or any error fails the run.
//   k6 run -e BASE_URL=http://127.0.0.1:8080 bench/k6/smoke.js
import http from 'k6/http';
import { check } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';

export const options = {
  vus: 1,
  duration: __ENV.DURATION || '10s',
  thresholds: {
    checks: ['rate==1'],
    http_req_failed: ['rate==0'],
  },
};

const isWorld = (w) => Number.isInteger(w.id) && w.id >= 1 && w.id <= 10000 &&
  Number.isInteger(w.randomNumber) && w.randomNumber >= 1 && w.randomNumber <= 10000;

export default function () {
  const plain = http.get(`${BASE_URL}/plaintext`);
  check(plain, {
    'plaintext 200': (r) => r.status === 200,
    'plaintext body': (r) => r.body === 'Hello, World!',
    'plaintext has Server and Date': (r) => !!r.headers['Server'] && !!r.headers['Date'],
  });

  const json = http.get(`${BASE_URL}/json`);
  check(json, {
    'json 200': (r) => r.status === 200,
    'json body': (r) => r.json('message') === 'Hello, World!',
  });

  const db = http.get(`${BASE_URL}/db`);
  check(db, { 'db world': (r) => r.status === 200 && isWorld(r.json()) });

  const queries = http.get(`${BASE_URL}/queries?queries=5`);
  check(queries, { 'queries 5 worlds': (r) => r.status === 200 && r.json().length === 5 && r.json().every(isWorld) });

  const fortunes = http.get(`${BASE_URL}/fortunes`);
  check(fortunes, {
    'fortunes html': (r) => r.status === 200 && String(r.headers['Content-Type']).startsWith('text/html'),
    'fortunes escaped': (r) => r.body.includes('&lt;script&gt;') && !r.body.includes('<script>'),
  });
}
