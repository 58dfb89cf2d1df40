/**
 * A bounded text buffer for a console's output: appends are cheap however
 * small the chunks, and memory stays within about `limit` characters.
 *
 * Small chunks are gathered into a piece of up to 4096 characters, which is
 * flattened once when it is full; whole pieces are dropped from the front
 * once the total passes the limit: it holds at most `limit` plus two
 * pieces, or up to twice `limit` after `toString` joined everything into
 * one piece. Each character is copied a constant number of times, where a
 * single growing string would either build a tree of tiny pieces (memory)
 * or be re-copied on every trim (time).
 */
const PIECE = 4096

export class TextBuffer {
  private pieces: Array<string> = []
  private piecesLength = 0
  private current = ""
  /** Characters ever dropped from the front (past the limit, or consumed): positions shift by this much. */
  dropped = 0

  constructor(readonly limit: number) {}

  get length(): number {
    return this.piecesLength + this.current.length
  }

  append(text: string): void {
    this.current += text
    if (this.current.length < PIECE) return
    // charCodeAt flattens the concatenated piece in place (V8).
    this.current.charCodeAt(0)
    this.pieces.push(this.current)
    this.piecesLength += this.current.length
    this.current = ""
    let excess = this.length - this.limit
    while (excess > 0 && this.pieces.length > 0 && this.pieces[0]!.length <= excess) {
      const piece = this.pieces.shift()!
      this.piecesLength -= piece.length
      this.dropped += piece.length
      excess -= piece.length
    }
  }

  /** The whole content (up to `limit` plus one piece), flattened into one string. */
  toString(): string {
    const text = this.pieces.length === 0 ? this.current : this.pieces.join("") + this.current
    this.pieces = text.length > 0 ? [text] : []
    this.piecesLength = text.length
    this.current = ""
    return text
  }

  /**
   * The content from `position` on, without joining what comes before it:
   * a search of the newest output costs what that output is long, not what
   * the whole buffer is.
   */
  from(position: number): string {
    if (position <= 0) return this.toString()
    let offset = position
    let index = 0
    while (index < this.pieces.length && offset >= this.pieces[index]!.length) {
      offset -= this.pieces[index]!.length
      index++
    }
    if (index === this.pieces.length) return this.current.slice(offset)
    return this.pieces[index]!.slice(offset) + this.pieces.slice(index + 1).join("") + this.current
  }

  /** The last `count` characters. */
  tail(count: number): string {
    const text = this.toString()
    return text.length > count ? text.slice(text.length - count) : text
  }

  /** Drops the first `count` characters. */
  dropFront(count: number): void {
    this.dropped += count
    const text = this.toString().slice(count)
    this.pieces = text.length > 0 ? [text] : []
    this.piecesLength = text.length
  }
}
