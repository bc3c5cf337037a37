import { Type, type Static } from '@sinclair/typebox';

const Id = Type.String({ format: 'uuid' });
const strict = { additionalProperties: false } as const;

export const TenantParams = Type.Object({ tenantId: Id }, strict);
export type TenantParams = Static<typeof TenantParams>;
export const ServerParams = Type.Object({ tenantId: Id, serverId: Id }, strict);
export type ServerParams = Static<typeof ServerParams>;
export const DestinationParams = Type.Object({ tenantId: Id, destinationId: Id }, strict);
export type DestinationParams = Static<typeof DestinationParams>;
export const TokenParams = Type.Object({ tokenId: Id }, strict);
export const TenantTokenParams = Type.Object({ tenantId: Id, tokenId: Id }, strict);

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    field: Type.Optional(Type.String()),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
});
export const NoContent = Type.Null();
