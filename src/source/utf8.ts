/**
 * Decodes bytes that must be UTF-8 (names in archives and directories,
 * package header strings) exactly: it throws on anything that is not UTF-8,
 * and keeps a leading U+FEFF, which a decoder drops by default (a name that
 * starts with one would become another name).
 */
export const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
