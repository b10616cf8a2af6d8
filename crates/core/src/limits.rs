//! Limits of SPEC.md section 6 and the field ranges of section 2, in one place.

/// Sync invocation payload in and out (SPEC.md 3, 6).
pub const SYNC_PAYLOAD_MAX: usize = 6 * 1024 * 1024;
/// Async invocation payload (SPEC.md 3, 6).
pub const ASYNC_PAYLOAD_MAX: usize = 256 * 1024;
/// A zip code package as uploaded (FSS.1071).
pub const ZIP_CODE_MAX: usize = 50 * 1024 * 1024;
/// Inline code (FSS.1072).
pub const INLINE_CODE_MAX: usize = 10 * 1024;
/// Unpacked code tree.
pub const UNPACKED_MAX: u64 = 250 * 1024 * 1024;
/// Files in one unpacked tree.
pub const UNPACKED_FILES_MAX: usize = 30_000;
/// All user environment variables together.
pub const USER_DATA_MAX: usize = 4 * 1024;
/// Functions per project.
pub const FUNCTIONS_PER_PROJECT: u64 = 400;
/// Processes and threads of one instance together (SPEC.md 6).
pub const PIDS_MAX: u32 = 1024;
/// The bytes of log returned by `X-Cff-Log-Type: tail`.
pub const LOG_TAIL_BYTES: usize = 4 * 1024;

pub const MEMORY_SIZES: &[u32] = &[
    128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 8192, 10240,
];
pub const TIMEOUT_MIN: u32 = 3;
pub const TIMEOUT_MAX: u32 = 259_200;
pub const INITIALIZER_TIMEOUT_MIN: u32 = 1;
pub const INITIALIZER_TIMEOUT_MAX: u32 = 300;
pub const PRE_STOP_TIMEOUT_MAX: u32 = 90;
pub const CONCURRENT_NUM_MAX: u32 = 1000;
pub const MAX_INSTANCE_NUM_MAX: i32 = 1000;
pub const MAX_INSTANCE_NUM_DEFAULT: i32 = 400;
pub const DESCRIPTION_MAX: usize = 512;

/// CPU in millicores for a memory size (SPEC.md 2: `memory/128*100+200`).
pub fn cpu_millicores(memory_mb: u32) -> u32 {
    memory_mb / 128 * 100 + 200
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_follows_memory() {
        assert_eq!(cpu_millicores(128), 300);
        assert_eq!(cpu_millicores(256), 400);
        assert_eq!(cpu_millicores(1024), 1000);
    }
}
