/**
 * Renders 10,000 replies from the shipped example set (`templates/`): text and HTML responses
 * with a message's values, the agent and the locale. Prints one JSON line.
 * Run: npx tsx bench/templates-render.ts [replies]
 */
import { fileURLToPath } from 'node:url';
import { TemplateCatalog } from '../src/templates/catalog.js';
import type { RenderContext } from '../src/templates/identifiers.js';
import { renderResponse } from '../src/templates/renderer.js';
import { walkResponses, type LoadedResponse } from '../src/templates/types.js';

const replies = Number(process.argv[2] ?? 10_000);
const dir = fileURLToPath(new URL('../templates', import.meta.url));
const catalog = new TemplateCatalog({ dir, watch: false, pollIntervalMs: 0 });
await catalog.reload();
const responses: LoadedResponse[] = catalog
  .files()
  .flatMap((file) => [...walkResponses(catalog.get(file)?.items ?? [])].map((r) => r.response))
  .filter((r) => r.template !== undefined);
if (responses.length === 0) throw new Error(`no usable responses in ${dir}`);

const locales: Array<[string, string]> = [
  ['en-US', 'America/New_York'],
  ['de-DE', 'Europe/Berlin'],
];
function contextOf(i: number): RenderContext {
  const [locale, timeZone] = locales[i % locales.length] as [string, string];
  return {
    callId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    message: {
      subject: `Order #${i} <urgent> & more`,
      fromAddress: `customer${i}@example.com`,
      fromName: i % 3 === 0 ? null : `Customer ${i}`,
      receivedAt: new Date(1_709_600_000_000 + i * 60_000),
    },
    serviceGroup: { name: 'Support', address: 'support@example.com' },
    agent: { name: 'Ann Agent', firstName: 'Ann' },
    now: new Date(),
    locale,
    timeZone,
  };
}

let bytes = 0;
const started = process.hrtime.bigint();
for (let i = 0; i < replies; i += 1) {
  const rendered = renderResponse(responses[i % responses.length] as LoadedResponse, contextOf(i));
  bytes += (rendered.text ?? rendered.html ?? '').length;
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stdout.write(
  `${JSON.stringify({
    bench: 'templates.render',
    replies,
    responses: responses.length,
    seconds: Number(seconds.toFixed(4)),
    perSecond: Math.round(replies / seconds),
    outputChars: bytes,
  })}\n`,
);
