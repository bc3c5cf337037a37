import assert from 'node:assert/strict';
import {
  MAX_NESTING,
  parseResponseXml,
  ResponseFileError,
  type XmlItem,
} from '../../../src/templates/response-xml.js';
import { responseFile } from '../../support/template-dir.js';

function fails(xml: string, line: number, reason: RegExp): void {
  assert.throws(
    () => parseResponseXml(xml),
    (err: unknown) => err instanceof ResponseFileError && err.line === line && reason.test(err.message),
  );
}

describe('response file XML', () => {
  it('honours XML escapes, CDATA and encoded CR/LF; literal layout whitespace is trimmed', () => {
    const items = parseResponseXml(
      responseFile(
        '<Response Name="A &amp; B" Description="&lt;tip&gt; &#x263A;">\n  1 &lt; 2 &amp;&amp; 3 &gt; 2&#x0d;&#x0a;next&#10;\n</Response>\n' +
          '<Response Name="cdata"><![CDATA[<b>&amp;</b>]]></Response>',
      ),
    );
    assert.deepEqual(items[0], {
      type: 'response',
      name: 'A & B',
      description: '<tip> ☺',
      src: undefined,
      text: '1 < 2 && 3 > 2\r\nnext\n',
      line: 3,
    });
    assert.equal((items[1] as { text: string }).text, '<b>&amp;</b>');
  });

  it('reads nested groups with Expanded (default false)', () => {
    const items = parseResponseXml(
      responseFile(
        '<Group Name="a"><Group Name="b" Expanded="true"><Group Name="c"><Response Name="r">x</Response></Group></Group></Group>',
      ),
    );
    const a = items[0] as Extract<XmlItem, { type: 'group' }>;
    const b = a.items[0] as Extract<XmlItem, { type: 'group' }>;
    assert.equal(a.expanded, false);
    assert.equal(b.expanded, true);
    assert.equal((b.items[0] as Extract<XmlItem, { type: 'group' }>).items[0]?.type, 'response');
  });

  it('reads groups nested hundreds deep, and names the line where a file goes past the bound', () => {
    const nest = (depth: number): string =>
      `${'<Group Name="g">\n'.repeat(depth)}<Response Name="deep" Description="a > b">x</Response>\n${'</Group>\n'.repeat(depth)}`;
    let items = parseResponseXml(responseFile(nest(500)));
    for (let level = 0; level < 500; level += 1) items = (items[0] as Extract<XmlItem, { type: 'group' }>).items;
    assert.equal(items[0]?.type, 'response', 'the response 500 groups down');
    // responseFile() puts <ResponseFile> on line 2; group n opens on line n + 2.
    fails(responseFile(nest(MAX_NESTING)), MAX_NESTING + 2, /nested more than 998 deep/);
  });

  it('refuses a DOCTYPE: no external entities (XXE)', () => {
    fails(
      '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<ResponseFile><Response Name="x">&xxe;</Response></ResponseFile>',
      2,
      /DOCTYPE declarations are not allowed/,
    );
  });

  it('refuses a DOCTYPE: no entity expansion bombs (billion laughs)', () => {
    const lol = ['<!ENTITY lol "lol">'];
    for (let i = 1; i < 10; i += 1) lol.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
    fails(
      `<?xml version="1.0"?>\n<!DOCTYPE lolz [\n${lol.join('\n')}\n]>\n<ResponseFile><Response Name="x">&lol9;</Response></ResponseFile>`,
      2,
      /DOCTYPE/,
    );
  });

  it('refuses undefined entities (HTML names are not XML)', () => {
    fails(responseFile('<Response Name="x">a&nbsp;b</Response>'), 3, /entity '&nbsp;' is not defined/);
  });

  it('reports the line of a syntax error', () => {
    fails(
      responseFile('<Response Name="a">ok</Response>\n<Group Name="g">\n<Response Name="b">x</Response>'),
      6,
      /not well-formed/,
    );
  });

  it('reports missing names, missing content, bad Expanded, unknown elements and markup in inner text', () => {
    fails(responseFile('\n<Response>x</Response>'), 4, /<Response> needs a Name/);
    fails(responseFile('<Group Expanded="true"/>'), 3, /<Group> needs a Name/);
    fails(responseFile('<Response Name="empty">   </Response>'), 3, /needs a Src attribute or inner text/);
    fails(responseFile('<Group Name="g" Expanded="yes"/>'), 3, /must be "true" or "false"/);
    fails(responseFile('<Answer Name="x">y</Answer>'), 3, /unknown element <Answer>/);
    fails(responseFile('<Response Name="x">a <b>bold</b></Response>'), 3, /contains the element <b>/);
    fails('<Responses><Response Name="x">y</Response></Responses>', 1, /root element must be <ResponseFile>/);
  });
});
