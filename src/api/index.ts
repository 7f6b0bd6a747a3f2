/** The console protocol: model, codec and framing. */
export * from './model.js';
export {
  ProtocolError,
  parseMessage,
  decodeMessageText,
  encode,
  encodeLine,
  encodeRequest,
  encodeResponse,
  encodeNotification,
  encodeError,
  encodeExitStatus,
  encodeManifest,
} from './codec.js';
export { StreamReader, LineTooLongError, StreamTimeoutError } from './lines.js';
export { parseJson, compactJson, prettyJson, JsonSyntaxError, type JsonNode, type JsonValue } from '../common/json.js';
