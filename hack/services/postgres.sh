#!/bin/sh
# xcheckpoint-test/services: PostgreSQL 15 (as postgres, its data in the
# container's own filesystem) with a client in the same container that keeps
# one connection open and inserts a row every half second, printing the id
# the server committed: "inserted N". Run with --user postgres.
set -e
pg=/usr/lib/postgresql/15/bin
"$pg/postgres" -D /var/lib/postgresql/data &
until "$pg/pg_isready" -q -h /var/run/postgresql -d app; do sleep 0.5; done
"$pg/psql" -h /var/run/postgresql -d app -qAtc 'SELECT 1' >/dev/null
echo "postgres ready"
# One psql, one connection: the statements come from the loop through a pipe.
while :; do
	echo "INSERT INTO ticks DEFAULT VALUES RETURNING 'inserted ' || id;"
	sleep 0.5
done | "$pg/psql" -h /var/run/postgresql -d app -qAt -v ON_ERROR_STOP=1
