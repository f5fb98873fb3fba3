"""`make bench`: run every benchmark and print its figures."""

from benchmarks import appointment_bench, emulator_bench, monitor_bench, series_bench, sync_bench

if __name__ == "__main__":
    emulator_bench.main([])
    print()
    sync_bench.main([])
    print()
    appointment_bench.main([])
    print()
    series_bench.main([])
    print()
    monitor_bench.main([])
