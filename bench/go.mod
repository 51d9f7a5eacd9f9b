module switchyard/bench

go 1.26
