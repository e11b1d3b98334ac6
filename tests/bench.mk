# Benchmark tool.
