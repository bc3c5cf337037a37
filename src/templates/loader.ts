import { posix } from 'node:path';
import { AddressPolicy } from '../shared/address-policy.js';
import type { WebProxy } from '../shared/web-proxy.js';
import { compileTemplate } from './compile.js';
import { kindOfPath } from './content-types.js';
import { escapeHtml } from './escape.js';
import { imageOf, inlineImages } from './html-images.js';
import { fetchRemote } from './remote-src.js';
import { parseResponseXml, ResponseFileError, type XmlItem, type XmlResponse } from './response-xml.js';
import { classifySrc, readConfined, SrcError } from './src-path.js';
import { decodeSrcFile, decodeXmlFile } from './text-encoding.js';
import type { LoadedFile, LoadedResponse, TemplateProblem, TreeItem } from './types.js';

export interface LoaderOptions {
  /** [false] fetch `http`/`https` Src (MAILROOM_TEMPLATES_REMOTE_SRC); off, such responses are unavailable. */
  remoteSrc?: boolean;
  /** [5242880] largest Src file or remote body, bytes. */
  maxSrcBytes?: number;
  /** [1048576] largest response (XML) file, bytes. */
  maxFileBytes?: number;
  /** [10000] time a remote Src may take, milliseconds. */
  remoteTimeoutMs?: number;
  /** The proxy remote Src are fetched through (MAILROOM_HTTPS_PROXY); none when absent. */
  proxy?: WebProxy | undefined;
  /** [public addresses only] where remote Src and their redirects may lead (MAILROOM_REMOTE_SRC_ALLOW_PRIVATE). */
  remoteAddresses?: AddressPolicy | undefined;
  /** [false] plain http:// remote Src are fetched too (MAILROOM_REMOTE_SRC_ALLOW_HTTP); else https only. */
  remoteAllowHttp?: boolean;
}

/** The outcome of loading one response file. */
export interface FileLoad {
  file: string;
  /** Absent when the file itself is unusable (see problems). */
  loaded?: LoadedFile;
  problems: TemplateProblem[];
  /** Local files read besides the XML (relative paths), so a change to them reloads it. */
  dependencies: string[];
  /** A remote Src could not be fetched (server down, timeout): loading the file later may succeed. */
  remoteFailed: boolean;
}

interface Reader {
  read(path: string): Promise<Buffer>;
  fetch(url: URL): Promise<Buffer>;
  options: ResolvedLoaderOptions;
}

/** Loader options with their defaults filled in (a proxy stays optional). */
export type ResolvedLoaderOptions = Required<Omit<LoaderOptions, 'proxy' | 'remoteAddresses'>> &
  Pick<LoaderOptions, 'proxy'> & { remoteAddresses: AddressPolicy };

export function loaderDefaults(options: LoaderOptions = {}): ResolvedLoaderOptions {
  return {
    remoteSrc: options.remoteSrc ?? false,
    maxSrcBytes: options.maxSrcBytes ?? 5_242_880,
    maxFileBytes: options.maxFileBytes ?? 1_048_576,
    remoteTimeoutMs: options.remoteTimeoutMs ?? 10_000,
    proxy: options.proxy,
    remoteAddresses: options.remoteAddresses ?? AddressPolicy.strict(),
    remoteAllowHttp: options.remoteAllowHttp ?? false,
  };
}

/**
 * Loads one response file of the templates directory with every Src it references.
 * @param realRoot the templates directory after `realpath`
 * @param file its path relative to that directory, `/`-separated
 */
export async function loadResponseFile(realRoot: string, file: string, options: LoaderOptions = {}): Promise<FileLoad> {
  const opts = loaderDefaults(options);
  const dependencies = new Set<string>();
  let items: XmlItem[];
  const problems: TemplateProblem[] = [];
  try {
    const xml = await readConfined(realRoot, file, opts.maxFileBytes);
    const { text, invalid } = decodeXmlFile(xml);
    if (invalid) {
      problems.push({
        file,
        line: invalid.line,
        severity: 'warning',
        reason:
          `the file is ${invalid.message}, read with replacement characters there: save it as UTF-8 or declare ` +
          `the encoding it is in (<?xml version="1.0" encoding="windows-1252"?>)`,
      });
    }
    items = parseResponseXml(text);
  } catch (err) {
    const line = err instanceof ResponseFileError ? err.line : 0;
    return {
      file,
      problems: [{ file, line, severity: 'error', reason: (err as Error).message }],
      dependencies: [],
      remoteFailed: false,
    };
  }
  let remoteFailed = false;
  const reader: Reader = {
    options: opts,
    read: (path) => {
      dependencies.add(path);
      return readConfined(realRoot, path, opts.maxSrcBytes);
    },
    fetch: async (url) => {
      try {
        return await fetchRemote(url, {
          timeoutMs: opts.remoteTimeoutMs,
          maxBytes: opts.maxSrcBytes,
          proxy: opts.proxy,
          addresses: opts.remoteAddresses,
          allowHttp: opts.remoteAllowHttp,
        });
      } catch (err) {
        remoteFailed = true;
        throw err;
      }
    },
  };
  const build = async (list: XmlItem[]): Promise<TreeItem[]> => {
    const out: TreeItem[] = [];
    for (const item of list) {
      if (item.type === 'group') out.push({ ...item, items: await build(item.items) });
      else out.push(await responseOf(file, item, reader, problems));
    }
    return out;
  };
  const tree = await build(items);
  return { file, loaded: { file, items: tree }, problems, dependencies: [...dependencies], remoteFailed };
}

async function responseOf(
  file: string,
  xml: XmlResponse,
  reader: Reader,
  problems: TemplateProblem[],
): Promise<LoadedResponse> {
  const base = { type: 'response' as const, name: xml.name, line: xml.line, images: [] };
  if (xml.src === undefined) {
    return {
      ...base,
      kind: 'text',
      src: null,
      description: xml.description ?? xml.text,
      template: compileTemplate(xml.text),
    };
  }
  const target = classifySrc(xml.src, posix.dirname(file));
  const path = target.kind === 'local' ? target.path : target.kind === 'remote' ? target.url.pathname : xml.src;
  const { kind } = kindOfPath(path);
  const response: LoadedResponse = { ...base, kind, src: xml.src, description: xml.description ?? '' };
  const unavailable = (reason: string, severity: 'error' | 'warning' = 'error'): LoadedResponse => {
    problems.push({ file, line: xml.line, response: xml.name, severity, reason });
    return { ...response, unavailable: reason };
  };
  if (target.kind === 'refused') return unavailable(target.reason);
  if (target.kind === 'remote' && !reader.options.remoteSrc) {
    return unavailable(
      `remote Src ${target.url.href} is not fetched (MAILROOM_TEMPLATES_REMOTE_SRC is off)`,
      'warning',
    );
  }
  try {
    const content = target.kind === 'remote' ? await reader.fetch(target.url) : await reader.read(target.path);
    if (kind === 'image') {
      const image = imageOf(path, content);
      return { ...response, images: [image], template: [`<img src="cid:${image.cid}" alt="${escapeHtml(xml.name)}">`] };
    }
    const { text, invalid } = decodeSrcFile(content, kind === 'html');
    if (invalid) {
      // Still usable (with U+FFFD where the bytes were wrong), but the administrator must know.
      const fix = kind === 'html' ? 'save it as UTF-8 or declare its charset (<meta charset="windows-1252">)' : 'save it as UTF-8';
      problems.push({
        file,
        line: xml.line,
        response: xml.name,
        severity: 'warning',
        reason: `Src '${xml.src}' is ${invalid.message}, sent with replacement characters there: ${fix}`,
      });
    }
    if (kind === 'text' || target.kind === 'remote') return { ...response, template: compileTemplate(text) };
    const { html, images } = await inlineImages(text, posix.dirname(target.path), reader.read);
    return { ...response, images, template: compileTemplate(html) };
  } catch (err) {
    if (err instanceof SrcError) return unavailable(`Src '${xml.src}': ${err.message}`);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return unavailable(`Src '${xml.src}': symbolic links are refused here`);
    return unavailable(`Src '${xml.src}' could not be read: ${(err as Error).message}`);
  }
}
