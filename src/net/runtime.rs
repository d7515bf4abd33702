use std::io;

/// Builds the multi-thread runtime that owns every socket of one app.
///
/// Each app gets its own runtime so that `app.close()` can drop it and leave
/// nothing running in the process (Node exits by itself afterwards).
pub(crate) fn build_runtime(workers: usize) -> io::Result<tokio::runtime::Runtime> {
    let workers = if workers == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { workers };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("ferrosocket-io")
        .enable_io()
        .enable_time()
        .build()
}
