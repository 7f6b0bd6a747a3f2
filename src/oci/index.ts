/** Images from the OCI world: image layouts, oci-archive and docker-archive files → NPK roots. */
export { parseImageRef, parsePlatform, hostPlatform, formatPlatform, openImage, OciError, IMAGE_FORMS, type Image, type ImageRef, type ImageConfig, type Platform } from './image.js';
export { RootBuilder, zstdSupport } from './apply.js';
export { configToManifest } from './config.js';
export { extractImage, type ExtractProgress } from './extract.js';
export { readTar, indexTar, TarError, type TarEntry } from './tar.js';
