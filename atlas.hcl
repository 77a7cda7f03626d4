# Atlas CLI project file, for people who run `atlas` themselves. DataPulse
# does not need it: the binary embeds the same migration files and applies
# them (`datapulse migrate status|up|diff`), and that is the supported way to
# change a DataPulse database (it also guards SQLite table rebuilds).
#
#   atlas migrate validate --env sqlite
#   atlas migrate lint     --env postgres --latest 1
#   atlas schema inspect   --env postgres --var postgres_url="postgres://…"
#
# The PostgreSQL dev database must be empty and is wiped by atlas: the default
# uses Docker; without Docker pass --var postgres_dev_url="postgres://…/scratch?sslmode=disable".

variable "sqlite_url" {
  type    = string
  default = "sqlite://datapulse-data/datapulse.db?_fk=1"
}

variable "postgres_url" {
  type    = string
  default = getenv("DATAPULSE_DATABASE_URL")
}

variable "postgres_dev_url" {
  type    = string
  default = "docker://postgres/15/dev?search_path=public"
}

env "sqlite" {
  src = "ent://ent/schema"
  url = var.sqlite_url
  dev = "sqlite://dev?mode=memory"
  migration {
    dir = "file://ent/migrate/migrations/sqlite"
  }
}

env "postgres" {
  src = "ent://ent/schema"
  url = var.postgres_url
  dev = var.postgres_dev_url
  migration {
    dir = "file://ent/migrate/migrations/postgres"
  }
}
