import { EntitySchema, type EntityManager } from 'typeorm';

/** Per destination (service group): which response files apply, and its locale and time zone for dates. */
export interface ResponseFileSettingsRow {
  destinationId: string;
  tenantId: string;
  /** Response files (paths relative to the templates directory) offered to this destination; null: all. */
  files: string[] | null;
  /** BCP 47 locale for `$Date$`, `$Received…$`; null: the engine default. */
  locale: string | null;
  /** IANA time zone; null: the engine default. */
  timeZone: string | null;
  updatedAt: Date;
}

export const ResponseFileSettingsEntity = new EntitySchema<ResponseFileSettingsRow>({
  name: 'DestinationResponseFiles',
  tableName: 'destination_response_files',
  columns: {
    destinationId: { type: 'uuid', name: 'destination_id', primary: true },
    tenantId: { type: 'uuid', name: 'tenant_id' },
    files: { type: 'jsonb', nullable: true },
    locale: { type: 'text', nullable: true },
    timeZone: { type: 'text', name: 'time_zone', nullable: true },
    updatedAt: { type: 'timestamptz', name: 'updated_at', updateDate: true },
  },
  relations: {
    destination: {
      type: 'many-to-one',
      target: 'Destination',
      joinColumn: { name: 'destination_id', foreignKeyConstraintName: 'destination_response_files_destination_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
});

/** No row for a destination means: every response file, engine default locale and time zone. */
export class ResponseFileSettingsRepository {
  constructor(private readonly em: EntityManager) {}

  get(tenantId: string, destinationId: string): Promise<ResponseFileSettingsRow | null> {
    return this.em.findOneBy(ResponseFileSettingsEntity, { tenantId, destinationId });
  }

  async put(row: Omit<ResponseFileSettingsRow, 'updatedAt'>): Promise<void> {
    await this.em.query(
      `INSERT INTO destination_response_files (destination_id, tenant_id, files, locale, time_zone, updated_at)
       VALUES ($1, $2, $3::jsonb, $4, $5, now())
       ON CONFLICT (destination_id) DO UPDATE
         SET files = EXCLUDED.files, locale = EXCLUDED.locale, time_zone = EXCLUDED.time_zone, updated_at = now()`,
      [
        row.destinationId,
        row.tenantId,
        row.files === null ? null : JSON.stringify(row.files),
        row.locale,
        row.timeZone,
      ],
    );
  }

  async delete(tenantId: string, destinationId: string): Promise<void> {
    await this.em.delete(ResponseFileSettingsEntity, { tenantId, destinationId });
  }
}
