export { LoopMounter, mountAll, veritysetupArgs, hasDeviceMapper, type Mounter, type MountRequest, type MountedImage, type LoopMounterOptions } from './mounter.js';
export { ensurePrivateMountNamespace, MOUNT_NS_MARKER, type PrivateMountNamespaceOptions } from './namespace.js';
export { readMountInfo, parseMountInfo, mountAt, type MountInfoEntry } from './mountinfo.js';
export { mountWritableRoot, mountOverlay, mountTmpfs, umount, checkOverlayPath, type WritableRoot, type OverlayLayers } from './overlay.js';
