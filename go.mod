module github.com/switchboard/switchboard

go 1.26.8
