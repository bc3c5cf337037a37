import assert from 'node:assert/strict';
import { compileTemplate } from '../../../src/templates/compile.js';
import { IDENTIFIERS, type RenderContext } from '../../../src/templates/identifiers.js';
import { renderResponse } from '../../../src/templates/renderer.js';
import type { LoadedResponse, ResponseKind } from '../../../src/templates/types.js';

function responseOf(template: string, kind: ResponseKind): LoadedResponse {
  return {
    type: 'response',
    name: 't',
    description: '',
    kind,
    src: null,
    line: 1,
    images: [],
    template: compileTemplate(template),
  };
}
const text = (template: string, ctx: RenderContext) => renderResponse(responseOf(template, 'text'), ctx).text;
const html = (template: string, ctx: RenderContext) => renderResponse(responseOf(template, 'html'), ctx).html;

const CALL_ID = '3f9d6a52-8c1e-4a7b-9e0f-2b5c8d7e6f10';
function context(locale: string, timeZone: string, overrides: Partial<RenderContext> = {}): RenderContext {
  return {
    callId: CALL_ID,
    message: {
      subject: 'Invoice <42> & "more"',
      fromAddress: 'zoe@example.com',
      fromName: "Zoë O'Brien",
      receivedAt: new Date('2024-03-04T23:15:00Z'),
    },
    serviceGroup: { name: 'Support & Sales', address: 'support@example.com' },
    agent: { name: 'Ann Agent', firstName: 'Ann', lastName: 'Agent', chatName: 'Annie' },
    now: new Date('2024-03-05T22:30:00Z'),
    locale,
    timeZone,
    ...overrides,
  };
}

/** The identifier table of the reference, in its order. */
const REFERENCE_TABLE = [
  'CallID',
  'Subject',
  'From',
  'From.Name',
  'From.Address',
  'Date',
  'Time',
  'Received',
  'Received.Date',
  'Received.Time',
  'ServiceGroup',
  'ServiceGroup.Name',
  'ServiceGroup.Email',
  'Agent',
  'Agent.Name',
  'Agent.FirstName',
  'Agent.LastName',
  'Agent.ChatName',
  'Customer',
  'Customer.Name',
  'Customer.Email',
];

const COMMON: Record<string, [string, string]> = {
  CallID: [CALL_ID, CALL_ID],
  Subject: ['Invoice <42> & "more"', 'Invoice &lt;42&gt; &amp; &quot;more&quot;'],
  From: ["Zoë O'Brien (zoe@example.com)", 'Zoë O&#39;Brien (zoe@example.com)'],
  'From.Name': ["Zoë O'Brien", 'Zoë O&#39;Brien'],
  'From.Address': ['zoe@example.com', 'zoe@example.com'],
  ServiceGroup: ['Support & Sales', 'Support &amp; Sales'],
  'ServiceGroup.Name': ['Support & Sales', 'Support &amp; Sales'],
  'ServiceGroup.Email': ['support@example.com', 'support@example.com'],
  Agent: ['Ann Agent', 'Ann Agent'],
  'Agent.Name': ['Ann Agent', 'Ann Agent'],
  'Agent.FirstName': ['Ann', 'Ann'],
  'Agent.LastName': ['Agent', 'Agent'],
  'Agent.ChatName': ['Annie', 'Annie'],
  Customer: ["Zoë O'Brien", 'Zoë O&#39;Brien'],
  'Customer.Name': ["Zoë O'Brien", 'Zoë O&#39;Brien'],
  'Customer.Email': ['zoe@example.com', 'zoe@example.com'],
};

// now 2024-03-05 22:30 UTC, received 2024-03-04 23:15 UTC (New York: UTC-5; Berlin: UTC+1, the next day).
const LOCALES: Array<{ locale: string; timeZone: string; dates: Record<string, string> }> = [
  {
    locale: 'en-US',
    timeZone: 'America/New_York',
    dates: {
      Date: '3/5/24',
      Time: '5:30 PM',
      Received: '3/4/24, 6:15 PM',
      'Received.Date': '3/4/24',
      'Received.Time': '6:15 PM',
    },
  },
  {
    locale: 'de-DE',
    timeZone: 'Europe/Berlin',
    dates: {
      Date: '05.03.24',
      Time: '23:30',
      Received: '05.03.24, 00:15',
      'Received.Date': '05.03.24',
      'Received.Time': '00:15',
    },
  },
];

describe('response renderer', () => {
  it('knows exactly the identifiers of the reference table', () => {
    assert.deepEqual(Object.keys(IDENTIFIERS), REFERENCE_TABLE);
  });

  for (const { locale, timeZone, dates } of LOCALES) {
    describe(`${locale} in ${timeZone}`, () => {
      for (const id of REFERENCE_TABLE) {
        const [plain, escaped] = COMMON[id] ?? [dates[id] as string, dates[id] as string];
        it(`$${id}$ in text and HTML`, () => {
          const ctx = context(locale, timeZone);
          assert.equal(text(`[$${id}$]`, ctx), `[${plain}]`);
          assert.equal(html(`<p>$${id}$</p>`, ctx), `<p>${escaped}</p>`);
        });
      }
    });
  }

  it('falls back: From.Name and From to the address, Agent.ChatName to the agent name, optional names empty', () => {
    const ctx = context('en-US', 'UTC', {
      message: { subject: 's', fromAddress: 'bob@example.com', fromName: null, receivedAt: new Date(0) },
      agent: { name: 'Ann Agent' },
    });
    assert.equal(text('$From.Name$|$From$|$From.Address$', ctx), 'bob@example.com|bob@example.com|bob@example.com');
    assert.equal(text('$Agent.ChatName$|$Agent.FirstName$|$Agent.LastName$', ctx), 'Ann Agent||');
    assert.equal(
      html('$Agent.ChatName$|$Agent.FirstName$', { ...ctx, agent: { name: 'A & B', chatName: '' } }),
      'A &amp; B|',
    );
    assert.equal(text('$Customer$|$Customer.Email$', ctx), '|bob@example.com', 'a sender without a name');
    assert.equal(
      text('$Customer$|$Customer.Email$', { ...ctx, customer: { name: 'Carl', email: 'c@x.org' } }),
      'Carl|c@x.org',
    );
  });

  it('renders message values empty without a message; $Date$ and $Time$ still work', () => {
    const { now, locale, timeZone } = context('de-DE', 'Europe/Berlin');
    assert.equal(
      text('[$Subject$][$From$][$CallID$][$Received$][$Agent$][$Date$ $Time$]', { now, locale, timeZone }),
      '[][][][][][05.03.24 23:30]',
    );
  });

  it('escapes a hostile $Subject$ in HTML (no markup injection)', () => {
    const ctx = context('en-US', 'UTC');
    ctx.message = {
      ...(ctx.message as NonNullable<RenderContext['message']>),
      subject: '<img src=x onerror=alert(1)>',
    };
    assert.equal(
      html('<p title="$Subject$">$Subject$</p>', ctx),
      '<p title="&lt;img src=x onerror=alert(1)&gt;">&lt;img src=x onerror=alert(1)&gt;</p>',
    );
    assert.equal(text('$Subject$', ctx), '<img src=x onerror=alert(1)>', 'text is not escaped');
  });

  it('strips CR/LF and other control characters from values, so a Subject cannot add headers', () => {
    const ctx = context('en-US', 'UTC');
    ctx.message = {
      ...(ctx.message as NonNullable<RenderContext['message']>),
      subject: 'Hi\r\nBcc: evil@example.com\u0000\u001b[31m\u2028x',
    };
    const out = text('Re: $Subject$\r\nline 2', ctx) ?? '';
    assert.equal(out, 'Re: Hi Bcc: evil@example.com[31m x\r\nline 2', "the template's own line break stays");
    assert.equal(html('$Subject$', ctx), 'Hi Bcc: evil@example.com[31m x');
  });

  it('leaves unknown identifiers in place and reports them; names match ignoring case', () => {
    const rendered = renderResponse(
      responseOf('$agent.name$ $Foo$ $Agent.Nickname$ $Foo$ costs $5 or US$ 10', 'text'),
      context('en-US', 'UTC'),
    );
    assert.equal(rendered.text, 'Ann Agent $Foo$ $Agent.Nickname$ $Foo$ costs $5 or US$ 10');
    assert.deepEqual(rendered.unknownIdentifiers, ['$Foo$', '$Agent.Nickname$']);
  });
});
